"""The console's two pictures, laid out on the server: the chart of requests by week and
state, and the data map. Only geometry here; the templates write the SVG, with colours as
presentation attributes (no ``style=``: the Content-Security-Policy refuses inline style),
a title and a description, and a table of the same numbers beside each picture."""

from __future__ import annotations

from dataclasses import dataclass

from privault.policy.flows import Flows
from privault.rights.service import State, WeekCount

#: A colour for each state, each at least 4.5:1 against white, always with its name beside.
STATE_COLOURS = {
    State.RECEIVED: "#9a4a00",
    State.VERIFIED: "#1f5fa8",
    State.IN_PROGRESS: "#6a3d9a",
    State.COMPLETED: "#2e6b30",
    State.REFUSED: "#a00000",
    State.WITHDRAWN: "#595959",
}
#: The edges leaving each column of the data map.
EDGE_COLOURS = ("#1f5fa8", "#2e6b30", "#9a4a00")


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    boxes: tuple[Box, ...]
    labels: tuple[Label, ...]
    #: Horizontal grid lines: (y, value).
    grid: tuple[tuple[float, int], ...]
    #: The states shown, with their colours, for the legend.
    legend: tuple[tuple[str, str], ...]
    left: int
    right: int


def weekly_chart(weeks: list[WeekCount]) -> Chart:
    """Stacked bars, one a week, oldest on the left, a segment per state."""
    width, height, left, top, bottom = 640, 260, 40, 16, 44
    plot = height - top - bottom
    peak = max([w.total for w in weeks] + [1])
    step = max(1, -(-peak // 4))
    scale = plot / (step * 4)
    slot = (width - left - 8) / max(len(weeks), 1)
    boxes, labels = [], []
    for i, week in enumerate(weeks):
        x = left + i * slot + slot * 0.15
        base: float = top + plot
        for state, colour in STATE_COLOURS.items():
            count = week.states.get(state, 0)
            if count:
                base -= count * scale
                title = f"week of {week.week:%d %b}: {count} {state.replace('_', ' ')}"
                boxes.append(Box(x, base, slot * 0.7, count * scale, colour, title))
        if i % 2 == 0 or len(weeks) <= 8:
            day = f"{week.week:%d %b}"
            labels.append(Label(x + slot * 0.35, height - bottom + 16, day, "middle"))
    grid = tuple((top + plot - n * step * scale, n * step) for n in range(5))
    legend = tuple(
        (state.value.replace("_", " "), colour)
        for state, colour in STATE_COLOURS.items()
        if any(w.states.get(state) for w in weeks)
    )
    return Chart(width, height, tuple(boxes), tuple(labels), grid, legend, left, width - 8)


@dataclass(frozen=True)
class MapNode:
    x: float
    y: float
    label: str
    title: str


@dataclass(frozen=True)
class Edge:
    path: str
    colour: str
    title: str


@dataclass(frozen=True)
class Map:
    width: int
    height: int
    box_width: int
    headers: tuple[Label, ...]
    nodes: tuple[MapNode, ...]
    edges: tuple[Edge, ...]


def _short(text: str, most: int = 26) -> str:
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def data_map(flows: Flows, headers: tuple[str, ...]) -> Map:
    """Four columns of boxes, each spread over the height of the longest, and curves from
    each box to the boxes it feeds."""
    box, gap, row, top = 172, 32, 30, 40
    width = len(flows.columns) * box + (len(flows.columns) - 1) * gap + 20
    tallest = max(len(column) for column in flows.columns)
    height = top + tallest * row + 10
    places: list[dict[str, tuple[float, float]]] = []
    nodes = []
    for c, column in enumerate(flows.columns):
        x = 10 + c * (box + gap)
        share = tallest * row / max(len(column), 1)
        places.append({})
        for i, node in enumerate(column):
            y = top + (i + 0.5) * share
            places[c][node.id] = (x, y)
            nodes.append(MapNode(x, y, _short(node.label), node.label))
    edges = []
    for c, pairs in enumerate(flows.edges):
        for source, target in pairs:
            (x1, y1), (x2, y2) = places[c][source], places[c + 1][target]
            start, end = x1 + box, x2
            middle = (start + end) / 2
            path = (
                f"M{start:.1f} {y1:.1f}"
                f"C{middle:.1f} {y1:.1f} {middle:.1f} {y2:.1f} {end:.1f} {y2:.1f}"
            )
            title = f"{flows.label(c, source)} → {flows.label(c + 1, target)}"
            edges.append(Edge(path, EDGE_COLOURS[c % len(EDGE_COLOURS)], title))
    labels = tuple(
        Label(10 + c * (box + gap) + box / 2, 20, header, "middle")
        for c, header in enumerate(headers)
    )
    return Map(width, height, box, labels, tuple(nodes), tuple(edges))
