"""Synthetic demo data for `privault demo`: enough people, calls, consents and requests that
every page shows something real. Nobody real: example.com addresses, phone numbers from
ranges kept for fiction or unused, names that say "example" in their own language.

Everything goes through the domain services, sealed like real data. The history of the
last fourteen months is a timeline played in order on a clock of its own (a back-dated
``FrozenClock``), so the access log reads in order and due dates, overdue requests and
retention fall where a real history would put them.

Idempotent: a person found by their address is left as they are, and everything of theirs
(profile, calls, consents, requests, holds, disclosures) is made only with them; what
belongs to no one (dial-in numbers, staff, statistics releases, visitors) is added only
where missing. A second run adds nothing and prints the same logins.
"""

from __future__ import annotations

import base64
import random
import struct
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from privault.clock import FrozenClock
from privault.consent.analytics import PageEvent
from privault.consent.channels import ConsentChannel, Source
from privault.disclosure.service import DisclosureBasis
from privault.errors import InvalidInput
from privault.notify.models import OutboxMessage
from privault.notify.outbox import template_of
from privault.policy.model import RecipientKind
from privault.retention.holds import HoldKind
from privault.rights.service import Channel, Refusal, RightsService
from privault.runtime import Runtime
from privault.service.cdrs import MAX_BATCH, CdrIn, Status
from privault.service.messages import Channel as MessageChannel
from privault.service.messages import Draft
from privault.service.numbers import NewNumber
from privault.service.passwords import Passwords
from privault.service.profile import Change, Visibility
from privault.service.purchases import NewPurchase, PurchaseKind
from privault.staff import totp
from privault.staff.service import ISSUER
from privault.vault import Field

#: The demo's staff. Their passwords and TOTP secrets are public, printed for anyone.
STAFF_NAME = "ann"
STAFF_PASSWORD = "quiet-meadow-ledger"  # noqa: S105 - a demo login, printed on purpose
STAFF_SECRET = b"privault-demo-totp!!"


@dataclass(frozen=True)
class DemoStaff:
    name: str
    role: str
    password: str
    secret: bytes

    def code(self, now: datetime) -> str:
        """The TOTP code valid at ``now``."""
        return totp.code_at(self.secret, totp.step_of(now))

    def login(self, now: datetime) -> str:
        """The login as printed: name, role, password, the TOTP secret, a code valid now and
        the URI for an authenticator app."""
        key = base64.b32encode(self.secret).decode().rstrip("=")
        uri = totp.provisioning_uri(self.secret, self.name, ISSUER)
        return (
            f"{self.name} ({self.role.replace('_', ' ')}) password {self.password}  "
            f"TOTP secret {key}, code now {self.code(now)}  {uri}"
        )


STAFF = (
    DemoStaff(STAFF_NAME, "privacy_officer", STAFF_PASSWORD, STAFF_SECRET),
    DemoStaff("sam", "support", "copper-lattice-morning", b"privault-demo-sam!!!"),
)

#: Demo logins are printed for anyone to read, so a costly hash protects nothing: the
#: cheapest Argon2id keeps seeding 40 people to a second instead of twenty.
_CHEAP = Passwords(time_cost=1, memory_kib=1024)


@dataclass(frozen=True)
class DemoPerson:
    email: str
    password: str
    display_name: str
    room_id: str
    note: str = ""


@dataclass(frozen=True)
class Seeded:
    people: list[DemoPerson]
    staff: tuple[DemoStaff, ...] = STAFF


# -- the cast ------------------------------------------------------------------------------

#: (first name, family name, country). The family name is "example" in the language of the
#: country; the first three are the fixed cast of the tests and the docs.
CAST: list[tuple[str, str, str]] = [
    ("Alice", "Example", "GB"),
    ("Bob", "Example", "GB"),
    ("Mallory", "Example", "GB"),
    ("Amélie", "Exemple", "FR"),
    ("Julien", "Exemple", "FR"),
    ("Camille", "Exemple", "FR"),
    ("Louis", "Exemple", "FR"),
    ("Chloé", "Exemple", "FR"),
    ("Hugo", "Exemple", "FR"),
    ("Léa", "Exemple", "FR"),
    ("Théo", "Exemple", "FR"),
    ("Oliver", "Example", "GB"),
    ("Amelia", "Example", "GB"),
    ("Harry", "Example", "GB"),
    ("Isla", "Example", "GB"),
    ("George", "Example", "GB"),
    ("Jonas", "Beispiel", "DE"),
    ("Lena", "Beispiel", "DE"),
    ("Felix", "Beispiel", "DE"),
    ("Marie", "Beispiel", "DE"),
    ("Lucía", "Ejemplo", "ES"),
    ("Mateo", "Ejemplo", "ES"),
    ("Carmen", "Ejemplo", "ES"),
    ("Giulia", "Esempio", "IT"),
    ("Marco", "Esempio", "IT"),
    ("Chiara", "Esempio", "IT"),
    ("Emma", "Voorbeeld", "NL"),
    ("Daan", "Voorbeeld", "NL"),
    ("Aoife", "Sampla", "IE"),
    ("Cian", "Sampla", "IE"),
    ("Astrid", "Exempel", "SE"),
    ("Erik", "Exempel", "SE"),
    ("Zofia", "Przykład", "PL"),
    ("Jakub", "Przykład", "PL"),
    ("Inês", "Exemplo", "PT"),
    ("Tiago", "Exemplo", "PT"),
    ("Madison", "Example", "US"),
    ("Tyler", "Example", "US"),
    ("Yui", "Rei", "JP"),
    ("Haruto", "Rei", "JP"),
]
#: The logins the demo has always printed.
FIXED_PASSWORDS = {
    "alice@example.com": "sailing-choir-kettle",
    "bob@example.com": "granite-harbour-lamp",
    "mallory@example.com": "crooked-lantern-fig",
}
WORDS = [
    "amber", "anchor", "basil", "beacon", "birch", "cobalt", "comet", "copper", "dahlia",
    "ember", "fennel", "fjord", "garnet", "harbour", "heron", "indigo", "juniper", "kestrel",
    "lantern", "linen", "maple", "meadow", "nectar", "orchid", "otter", "pebble", "quartz",
    "raven", "saffron", "sorrel", "spruce", "tidal", "tundra", "umber", "velvet", "walnut",
    "willow", "yarrow", "zephyr", "thistle",
]  # fmt: skip

#: Numbers from ranges reserved for fiction (Ofcom's drama numbers, the US 555-01xx, the
#: Bundesnetzagentur's 030 23125, ARCEP's 01 99 00).
DIAL_IN = [
    ("+44 20 7946 0000", "London"),
    ("+44 161 496 0000", "Manchester"),
    ("+1 202 555 0100", "Washington"),
    ("+33 1 99 00 00 00", "Paris"),
    ("+49 30 23125 000", "Berlin"),
]
#: The dial-in number a country's people call (no local one: the nearest).
HOME_DIAL_IN = {
    "FR": 3,
    "ES": 3,
    "IT": 3,
    "PT": 3,
    "PL": 3,
    "DE": 4,
    "GB": 0,
    "IE": 0,
    "NL": 0,
    "SE": 0,
    "US": 2,
    "JP": 2,
}
#: Callers' numbers: a number per caller in a fiction or unassigned range of each country.
CALLERS = {
    "GB": "+447700900{:03d}",
    "US": "+120255501{:02d}",
    "FR": "+331990{:05d}",
    "DE": "+493023125{:03d}",
    "ES": "+3491000{:04d}",
    "IT": "+39060000{:04d}",
    "NL": "+3120000{:04d}",
    "IE": "+3531555{:04d}",
    "SE": "+46800{:04d}",
    "PL": "+4822000{:04d}",
    "PT": "+35121000{:04d}",
    "JP": "+8130000{:04d}",
}
#: Numbers a number list may hold must exist in their country's plan: fiction ranges only.
LISTABLE = ["+44 20 7946 0{:03d}", "+1 202 555 01{:02d}", "+33 1 99 00 {:04d}"]

INTERESTS = [
    "choir",
    "sailing",
    "chess",
    "hiking",
    "photography",
    "cycling",
    "jazz",
    "pottery",
    "birdwatching",
    "climbing",
    "baking",
    "astronomy",
    "gardening",
    "running",
]
JOBS = [
    "Product manager",
    "Nurse",
    "Teacher",
    "Software developer",
    "Architect",
    "Translator",
    "Accountant",
    "Journalist",
    "Electrician",
    "Pharmacist",
    "Chef",
    "Librarian",
]
SCHOOLS = ["Université Exemple", "Example College", "Beispiel-Hochschule", "Escuela Ejemplo"]
POSTS = [
    "Our weekly choir call moves to Thursdays at 19:00 from next month.",
    "Tip: give your room a PIN before you share the Room ID with a big group.",
    "Looking for a chess partner for a call on Sunday mornings.",
    "Photos from the harbour walk are up; thanks to everyone who dialled in.",
    "The book club meets in my room on the first Monday of every month.",
    "Hiking group: the route for Saturday is the coastal path, 14 km.",
]
MESSAGES = [
    (
        "Cannot hear callers from Berlin",
        "Since Tuesday callers on the Berlin number hear me "
        "but I cannot hear them. Is the number working?",
    ),
    (
        "Invoice needed",
        "Could you send me an invoice for my last purchase with my company name on it?",
    ),
    ("Room ID change", "I shared my Room ID too widely. How do I get a new one?"),
    ("Question about my data", "Which of my details can other members see?"),
]
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
]
PAGES = ["/", "/privacy", "/cookies", "/room", "/me/privacy", "/signup", "/login"]
REFERRERS = [None, None, "https://search.example.net/", "https://www.example.org/news"]
MONTHS = 14
#: The demo's mail queued longer ago than this was sent; the rest waits in the outbox.
SENT_BEFORE = timedelta(days=6)


def _rng(seed: int | str) -> random.Random:
    """The same demo at every run: numbers that only need to look varied, not secret."""
    return random.Random(seed)  # noqa: S311


def email_of(first: str, family: str) -> str:
    """``first.family@example.com``, in ASCII."""
    if family == "Example" and f"{first.lower()}@example.com" in FIXED_PASSWORDS:
        return f"{first.lower()}@example.com"
    folded = unicodedata.normalize("NFKD", f"{first}.{family}".replace("ł", "l"))
    ascii_name = folded.encode("ascii", "ignore")
    return ascii_name.decode().lower() + "@example.com"


def password_of(index: int, email: str) -> str:
    fixed = FIXED_PASSWORDS.get(email)
    if fixed:
        return fixed
    n = len(WORDS)
    return f"{WORDS[index % n]}-{WORDS[(index * 7 + 3) % n]}-{WORDS[(index * 11 + 5) % n]}"


def avatar(index: int) -> str:
    """A 16x16 PNG of one colour, as a data URL: a profile picture that is nobody."""
    rng = _rng(index)
    pixel = bytes(rng.randrange(60, 220) for _ in range(3))
    raw = b"".join(b"\x00" + pixel * 16 for _ in range(16))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = b"\x89PNG\r\n\x1a\n" + b"".join(
        (
            chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)),
            chunk(b"IDAT", zlib.compress(raw)),
            chunk(b"IEND", b""),
        )
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


# -- the timeline --------------------------------------------------------------------------


@dataclass
class Resident:
    """A person of the cast made in this run; the ids are known once they registered."""

    index: int
    email: str
    password: str
    name: str
    country: str
    since: datetime
    rng: random.Random
    subject_id: str = ""
    room_id: str = ""


@dataclass
class World:
    """One run: the back-dated runtime and its clock, the session, the moment the run
    started, the steps to play in time order, and the calls gathered for one batch."""

    past: Runtime
    clock: FrozenClock
    session: Session
    now: datetime
    steps: list[tuple[datetime, int, Callable[[], object]]] = field(default_factory=list)
    calls: list[tuple[Resident, CdrIn]] = field(default_factory=list)
    requests: dict[str, str] = field(default_factory=dict)

    def ago(self, days: float, hours: float = 0) -> datetime:
        return self.now - timedelta(days=days, hours=hours)

    def at(self, when: datetime, step: Callable[[], object]) -> None:
        self.steps.append((when, len(self.steps), step))

    def play(self) -> None:
        for when, _, step in sorted(self.steps, key=lambda s: (s[0], s[1])):
            self.clock.at = when
            step()
        self.clock.at = self.now


def seed(runtime: Runtime) -> Seeded:
    """Create the demo once (see the module); later runs find it and print the same logins.
    Mail queued more than ``SENT_BEFORE`` ago counts as sent (to the maildir); the rest
    waits for the worker."""
    now = runtime.clock.now()
    clock = FrozenClock(now)
    past = replace(runtime, clock=clock)
    past.passwords = _CHEAP
    with past.transaction() as session:
        world = World(past, clock, session, now)
        _staff_and_dial_ins(world)
        cast = []
        for index, (first, family, country) in enumerate(CAST):
            email = email_of(first, family)
            name = f"{first} {family}"
            cast.append((index, email, password_of(index, email), name, country))
        new = [_resident(world, *member) for member in cast]
        if any(new):
            _visitors(world)
            world.at(world.ago(0, 2), lambda: _ingest(world))
        world.at(world.ago(0, 1), lambda: _releases(world))
        world.play()
        people = [
            _printed(world, index, email, password, name)
            for index, email, password, name, _ in cast
        ]
    clock.at = now - SENT_BEFORE
    mailer = past.mailer()
    while mailer.deliver_pending():
        pass
    return Seeded(people)


def _printed(world: World, index: int, email: str, password: str, name: str) -> DemoPerson:
    subject_id = world.past.accounts(world.session).subject_of(email)
    assert subject_id is not None
    room_id = world.past.rooms(world.session).room_id_of(subject_id, purpose="administration")
    return DemoPerson(email, password, name, room_id or "-", NOTES.get(index, ""))


def _staff_and_dial_ins(world: World) -> None:
    """The staff and the dial-in numbers, as an operator set them up before the first
    people came."""
    world.clock.at = world.ago(480)
    staff = world.past.staff(world.session)
    known = {m.name for m in staff.members()}
    for member in STAFF:
        if member.name not in known:
            staff.add(member.name, member.role, password=member.password, secret=member.secret)
    dial_ins = world.past.dial_ins(world.session)
    listed = {d.number for d in dial_ins.list()}
    for number, city in DIAL_IN:
        if number.replace(" ", "") not in listed:
            dial_ins.add(number, city)
    world.clock.at = world.now


# -- a person -------------------------------------------------------------------------------

#: Who shows what, printed next to their login.
NOTES = {
    0: "public page /u/alice, purchases, number lists, requests done",
    1: "an extended request, a disclosure to an authority",
    2: "erasure held back by a legal hold, a disclosure",
    3: "an overdue request",
    4: "an overdue request",
    5: "a new request by mail",
    6: "a request due soon",
    11: "a request due soon",
    38: "email not verified yet",
    39: "email not verified yet",
}
PUBLIC = {0, 1, 3, 4, 11, 12, 16, 20, 23, 26, 28, 30}
LISTS = {0: ["Choir", "Family"], 1: ["Book club"], 3: ["Team"], 11: ["Hiking group"], 16: ["Band"]}
UNVERIFIED = {38, 39}


def _registered_days_ago(index: int) -> int:
    """Most people came over a year ago (enough for statistics per month); a few lately."""
    late = (200, 150, 120, 90, 60, 30, 14, 8, 5, 2)
    return 470 - 4 * index if index < 30 else late[index - 30]


def _resident(world: World, index: int, email: str, password: str, name: str, country: str) -> bool:
    """Put a person's history on the timeline, unless they exist; returns whether new."""
    if world.past.accounts(world.session).subject_of(email) is not None:
        return False
    since = world.ago(_registered_days_ago(index), hours=index % 7)
    who = Resident(index, email, password, name, country, since, _rng(index))
    world.at(since, lambda: _register(world, who))
    if index not in UNVERIFIED:
        world.at(since + timedelta(minutes=20), lambda: _verify(world, who))
        world.at(since + timedelta(days=1), lambda: _channels(world, who))
    world.at(since + timedelta(days=1, hours=1), lambda: _profile(world, who))
    if index in PUBLIC:
        _publish(world, who)
    if index % 3 == 0:
        world.at(since + timedelta(hours=2), lambda: _pin(world, who))
    for n, list_name in enumerate(LISTS.get(index, [])):
        world.at(since + timedelta(days=3 + n), partial(_list, world, who, n, list_name))
    if index % 4 == 1 or index == 0:
        for n in range(1 + index % 3):
            when = since + timedelta(days=10 + 40 * n)
            world.at(when, partial(_purchase, world, who, n))
    if index in (0, 5, 13, 21):
        world.at(world.ago(9 + index), lambda: _message(world, who))
    _cookies(world, who)
    _calls(world, who)
    _requests(world, who)
    return True


def _register(world: World, who: Resident) -> None:
    accounts = world.past.accounts(world.session, source="web")
    done = accounts.register(who.email, who.password, who.name, ip=f"192.0.2.{who.index + 10}")
    who.subject_id, who.room_id = done.subject_id, done.room_id


def _verify(world: World, who: Resident) -> None:
    """Follow the link of the verification mail, as the person would."""
    session = world.session
    row = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.subject_id == who.subject_id, OutboxMessage.template == "verify_email"
        )
    ).one()
    assert row.payload_ct is not None
    payload = world.past.vault.decrypt_json(
        session,
        who.subject_id,
        Field("outbox", "payload_ct", row.id),
        row.payload_ct,
        purpose=template_of("verify_email").purpose,
    )
    assert isinstance(payload, dict)
    token = parse_qs(urlsplit(payload["context"]["link"]).query)["token"][0]
    world.past.accounts(session, source="web").verify_email(token)


def _channels(world: World, who: Resident) -> None:
    """Newsletter and marketing choices, varied: some subscribe, some object to post."""
    i, session = who.index, world.session
    if i % 3 == 1:
        world.past.newsletter(session, "web").choose(
            who.subject_id, {"newsletter": True}, Source.WEB
        )
    consents = world.past.channel_consents(session, "web")
    if i % 5 == 2:
        consents.give(who.subject_id, ConsentChannel.MARKETING_EMAIL, Source.WEB)
    if i % 7 == 3:
        consents.withdraw(who.subject_id, ConsentChannel.MARKETING_POST, Source.WEB)
    if i % 11 == 4:
        consents.give(who.subject_id, ConsentChannel.THIRD_PARTY, Source.WEB)


def _profile(world: World, who: Resident) -> None:
    """A full P2.4 profile for most, a name for the rest; public where they publish."""
    i, rng = who.index, who.rng
    shown = Visibility.PUBLIC if i in PUBLIC else Visibility.MEMBERS
    values: dict[str, tuple[object, Visibility]] = {"name": (who.name, shown)}
    if i % 4 != 3 and i < 36:
        born = world.now.date().replace(year=world.now.year - rng.randint(24, 58), day=1)
        values |= {
            "pictures": ([avatar(i)], shown),
            "birthday": (born.isoformat(), Visibility.PRIVATE),
            "gender": (rng.choice(["woman", "man", "non-binary"]), Visibility.PRIVATE),
            "relationship_status": (
                rng.choice(["single", "married", "in a relationship"]),
                Visibility.PRIVATE,
            ),
            "interests": (rng.sample(INTERESTS, 3), shown),
            "education": (rng.choice(SCHOOLS), Visibility.MEMBERS),
            "employment": (JOBS[i % len(JOBS)], Visibility.MEMBERS),
        }
    world.past.profiles(world.session).update(
        who.subject_id,
        {
            name: Change(visibility=visibility, value=value, has_value=True)
            for name, (value, visibility) in values.items()
        },
    )


def _publish(world: World, who: Resident) -> None:
    """A username (their public page) and a few posts, most of them public."""
    username = unicodedata.normalize("NFKD", who.name.split()[0]).encode("ascii", "ignore")

    def choose() -> None:
        world.past.posts(world.session).choose_username(who.subject_id, username.decode())

    world.at(who.since + timedelta(days=2), choose)
    shown = (Visibility.PUBLIC, Visibility.PUBLIC, Visibility.MEMBERS, Visibility.PRIVATE)
    for n in range(1 + who.index % 4):
        body = POSTS[(who.index + n) % len(POSTS)]

        def post(body: str = body, visibility: Visibility = shown[n]) -> None:
            world.past.posts(world.session).create(who.subject_id, body, visibility)

        world.at(who.since + timedelta(days=5 + 30 * n), post)


def _pin(world: World, who: Resident) -> None:
    """A PIN that the service accepts (not weak, not part of the Room ID)."""
    pins = world.past.pins(world.session, source="web")
    while True:
        try:
            pins.set_pin(who.subject_id, f"{who.rng.randrange(10**6):06d}")
            return
        except InvalidInput:
            continue


def _list(world: World, who: Resident, n: int, name: str) -> None:
    numbers = [
        NewNumber(LISTABLE[(who.index + k) % len(LISTABLE)].format(who.rng.randrange(100)), label)
        for k, label in enumerate(["Office", "Mobile", None, "Home"][: 2 + n])
    ]
    unique = list({num.number: num for num in numbers}.values())
    world.past.number_lists(world.session).create(who.subject_id, name, unique)


def _purchase(world: World, who: Resident, n: int) -> None:
    donation = n % 2 == 1
    world.past.purchases(world.session).record(
        who.subject_id,
        NewPurchase(
            kind=PurchaseKind.DONATION if donation else PurchaseKind.PURCHASE,
            item="Donation" if donation else "Premium room, 12 months",
            amount_minor=1000 if donation else 4800,
            currency="EUR",
            billing_name=who.name,
            payment_token=f"tok_demo_{who.index:02d}_{n}",
            billing_address=f"{who.index + 1} Example Street, Exampleton",
            email=who.email,
            card_brand="visa" if who.index % 2 else "mastercard",
            card_last4=f"{4242 + who.index:04d}",
            card_expiry="2028-09",
        ),
    )


def _message(world: World, who: Resident) -> None:
    subject, body = MESSAGES[who.index % len(MESSAGES)]
    world.past.messages(world.session).send(
        who.subject_id, Draft(subject, body), MessageChannel.WEB, f"192.0.2.{who.index + 10}"
    )


# -- cookies and visits ---------------------------------------------------------------------


def _cookies(world: World, who: Resident) -> None:
    """A live cookie choice (within its six months), and visits where analytics is on."""
    rng = who.rng
    given = max(who.since + timedelta(hours=1), world.ago(rng.randint(20, 170)))
    kind = who.index % 5
    choices = {"strictly_necessary": True, "analytics": kind < 3, "advertising": kind == 0}
    _browse(world, given, choices, who, rng)


def _visitors(world: World) -> None:
    """People who visit without an account: their choices, their visits, one message."""
    rng = _rng("visitors")
    for n in range(24):
        given = world.ago(rng.randint(1, 170), hours=rng.randint(0, 23))
        analytics = n % 3 != 0
        choices = {"strictly_necessary": True, "analytics": analytics, "advertising": n % 6 == 1}
        _browse(world, given, choices, None, rng)

    def write() -> None:
        world.past.messages(world.session).send_as_visitor(
            "visitor.one@example.com",
            Draft("Do you offer toll-free numbers?", "We would like a toll-free dial-in number."),
            "198.51.100.20",
        )

    world.at(world.ago(4), write)


def _browse(
    world: World,
    given: datetime,
    choices: dict[str, bool],
    who: Resident | None,
    rng: random.Random,
) -> None:
    """A cookie choice at ``given``, then, with analytics, a few visits of a few pages."""
    agent = rng.choice(USER_AGENTS)
    ip = f"203.0.113.{rng.randrange(1, 250)}"
    consent: dict[str, str] = {}

    def choose() -> None:
        choice = world.past.cookie_consents(world.session).record(
            None,
            choices,
            subject_id=who.subject_id if who else None,
            gpc=False,
            ip=ip,
        )
        consent["id"] = choice.consent_id

    world.at(given, choose)
    if not choices["analytics"]:
        return
    for visit in range(rng.randint(1, 3)):
        start = given + timedelta(minutes=1, days=visit * rng.randint(2, 9))
        if start >= world.now:
            break
        visit_id = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(22))
        pages = rng.sample(PAGES, rng.randint(2, 5))
        for n, page in enumerate(pages):
            referrer = rng.choice(REFERRERS) if n == 0 else None

            def view(
                page: str = page, referrer: str | None = referrer, vid: str = visit_id
            ) -> None:
                world.past.analytics(world.session).record(
                    PageEvent(vid, page, referrer),
                    consent_id=consent["id"],
                    subject_id=who.subject_id if who else None,
                    user_agent=agent,
                    ip=ip,
                )

            world.at(start + timedelta(seconds=40 * n + rng.randint(0, 30)), view)


# -- calls ----------------------------------------------------------------------------------


def _calls(world: World, who: Resident) -> None:
    """The CDRs of the person's room over the last fourteen months (since they came): a
    few calls most months, from a handful of regular callers, on their nearest dial-in."""
    rng = who.rng
    home = DIAL_IN[HOME_DIAL_IN[who.country]][0].replace(" ", "")
    abroad = rng.choice([c for c in CALLERS if c != who.country])
    callers = [CALLERS[who.country].format(rng.randrange(10**2)) for _ in range(4)]
    callers.append(CALLERS[abroad].format(rng.randrange(10**2)))
    latest = world.ago(0, 3)
    n = 0
    for month in range(MONTHS, -1, -1):
        if rng.random() > 0.85:
            continue
        window = world.ago(30 * (month + 1))
        for _ in range(rng.randint(3, 10)):
            start = window + timedelta(seconds=rng.randrange(30 * 86400))
            if not who.since < start < latest:
                continue
            roll = rng.random()
            disposition = "ANSWERED" if roll < 0.88 else "NO ANSWER" if roll < 0.96 else "BUSY"
            duration = rng.randint(60, 3600) if disposition == "ANSWERED" else rng.randint(5, 40)
            dial_in = home if rng.random() < 0.92 else rng.choice(DIAL_IN)[0].replace(" ", "")
            world.calls.append(
                (
                    who,
                    CdrIn(
                        row=len(world.calls),
                        call_id=f"demo-{who.index:02d}-{n:04d}",
                        room_id="",  # known once the person has registered: see _ingest
                        caller="anonymous" if rng.random() < 0.08 else rng.choice(callers),
                        dial_in=dial_in,
                        start=start.isoformat(timespec="seconds"),
                        answer=None,
                        end=None,
                        duration=duration,
                        billsec=max(duration - rng.randint(0, 20), 0)
                        if disposition == "ANSWERED"
                        else 0,
                        disposition=disposition,
                    ),
                )
            )
            n += 1


def _ingest(world: World) -> None:
    """The PBX's batches of the whole period, as one intake would take them."""
    rows = [call._replace(room_id=who.room_id) for who, call in world.calls]
    cdrs = world.past.cdrs(world.session)
    for start in range(0, len(rows), MAX_BATCH):
        report = cdrs.ingest(rows[start : start + MAX_BATCH], actor="pbx:demo")
        assert report.counts[Status.REJECTED] == 0, "a demo CDR was refused"


# -- requests, holds, disclosures, statistics -----------------------------------------------

STAFF_ACTOR = f"staff:{STAFF_NAME}"


def _requests(world: World, who: Resident) -> None:
    """Each scenario on its own person: a request in every state, some overdue, some due
    soon, one extended, one held back by a legal hold."""
    scenario = SCENARIOS.get(who.index)
    if scenario is not None:
        scenario(world, who)


def _file(
    world: World,
    who: Resident,
    when: datetime,
    kind: str,
    channel: Channel,
    *,
    details: str | None = None,
) -> Callable[[], str]:
    """File a request at ``when`` (verified at once unless it came by mail); returns how
    to find its id once played."""
    key = f"{who.index}:{kind}:{when.isoformat()}"

    def file() -> None:
        verified = channel is not Channel.MAIL
        actor = "mail:intake" if channel is Channel.MAIL else f"subject:{who.subject_id}"
        request = world.past.rights(world.session).file(
            who.subject_id, kind, channel, actor=actor, verified=verified, details=details
        )
        world.requests[key] = request.id

    world.at(when, file)
    return lambda: world.requests[key]


def _then(
    world: World,
    when: datetime,
    step: Callable[..., object],
    *,
    request: Callable[[], str],
    **kwargs: object,
) -> None:
    """A step of a request's workflow at ``when``: ``step(rights, request id, **kwargs)``."""
    world.at(when, lambda: step(world.past.rights(world.session), request(), **kwargs))


def _completed_requests(world: World, who: Resident) -> None:
    asked = _file(
        world,
        who,
        world.ago(60),
        "rectification",
        Channel.WEB,
        details="My display name is misspelt on invoices.",
    )
    _then(world, world.ago(52), _complete, request=asked, outcome="Billing name corrected.")

    def download() -> None:
        world.past.rights(world.session).export_now(who.subject_id)

    world.at(world.ago(90), download)


def _extended(world: World, who: Resident) -> None:
    asked = _file(
        world,
        who,
        world.ago(45),
        "rectification",
        Channel.WEB,
        details="Several of my call records show the wrong country.",
    )
    _then(world, world.ago(44), _start, request=asked, note="Checking with the carrier.")
    _then(
        world,
        world.ago(25),
        _extend,
        request=asked,
        reason="The carrier holds the original records; their answer takes weeks.",
    )
    world.at(world.ago(70), lambda: _disclose(world, who, "law", ["call_records"]))


def _held_erasure(world: World, who: Resident) -> None:
    def hold() -> None:
        world.past.holds(world.session).place(
            subject_ids=[who.subject_id],
            category=None,
            kind=HoldKind.PROCEEDINGS,
            reason="Dial-in fraud investigation, synthetic case 2026-017.",
            placed_by=STAFF_ACTOR,
            review_at=world.now + timedelta(days=60),
        )

    world.at(world.ago(30), hold)
    world.at(
        world.ago(28),
        lambda: _disclose(world, who, "court_order", ["registration", "call_records"]),
    )
    _file(world, who, world.ago(8), "erasure", Channel.WEB)


def _overdue_started(world: World, who: Resident) -> None:
    asked = _file(
        world,
        who,
        world.ago(41),
        "rectification",
        Channel.WEB,
        details="My employer is out of date.",
    )
    _then(world, world.ago(39), _start, request=asked, note="Waiting for proof of the change.")


def _overdue(world: World, who: Resident) -> None:
    _file(
        world,
        who,
        world.ago(33),
        "restriction",
        Channel.WEB,
        details="Please stop using my call records until my billing dispute is settled.",
    )


def _new_by_mail(world: World, who: Resident) -> None:
    _file(world, who, world.ago(2), "access", Channel.MAIL)


def _new_erasure_by_mail(world: World, who: Resident) -> None:
    _file(world, who, world.ago(1), "erasure", Channel.MAIL)


def _due_soon(world: World, who: Resident) -> None:
    _file(
        world,
        who,
        world.ago(27),
        "objection",
        Channel.WEB,
        details="I object to marketing by post.",
    )


def _due_soon_by_mail(world: World, who: Resident) -> None:
    asked = _file(world, who, world.ago(30), "rectification", Channel.MAIL)
    _then(
        world,
        world.ago(26),
        _verify_request,
        request=asked,
        note="Identity confirmed by a reply from the registered address.",
    )


def _verified(world: World, who: Resident) -> None:
    _file(
        world,
        who,
        world.ago(3),
        "rectification",
        Channel.WEB,
        details="My room settings show an old city.",
    )


def _portability(world: World, who: Resident) -> None:
    _file(world, who, world.ago(1), "portability", Channel.WEB)


def _refused(world: World, who: Resident) -> None:
    asked = _file(world, who, world.ago(20), "erasure", Channel.MAIL)
    _then(
        world,
        world.ago(5),
        _refuse,
        request=asked,
        grounds=Refusal.IDENTITY_NOT_CONFIRMED,
        reason="The request came from an address that is not the registered one.",
    )


def _refused_excessive(world: World, who: Resident) -> None:
    asked = _file(world, who, world.ago(15), "portability", Channel.MAIL)
    _then(
        world,
        world.ago(10),
        _refuse,
        request=asked,
        grounds=Refusal.EXCESSIVE,
        reason="The fourth copy asked for this month; the last one is still available.",
    )


def _withdrawn(world: World, who: Resident) -> None:
    asked = _file(
        world,
        who,
        world.ago(12),
        "rectification",
        Channel.WEB,
        details="My profile picture is wrong.",
    )

    def withdraw() -> None:
        world.past.rights(world.session).withdraw(asked(), who.subject_id)

    world.at(world.ago(11), withdraw)


def _restriction_done(world: World, who: Resident) -> None:
    asked = _file(world, who, world.ago(100), "restriction", Channel.WEB)
    _then(world, world.ago(95), _complete, request=asked, outcome="Processing restricted.")


def _category_hold(world: World, who: Resident) -> None:
    def hold() -> None:
        world.past.holds(world.session).place(
            subject_ids=[who.subject_id],
            category="transactions",
            kind=HoldKind.LAW,
            reason="Tax audit of the 2025 financial year, synthetic file 25-311.",
            placed_by=STAFF_ACTOR,
            ends_at=world.now + timedelta(days=700),
        )

    world.at(world.ago(18), hold)
    _refused_excessive(world, who)


def _complete(rights: RightsService, request_id: str, *, outcome: str) -> None:
    rights.complete(request_id, actor=STAFF_ACTOR, outcome=outcome)


def _start(rights: RightsService, request_id: str, *, note: str) -> None:
    rights.start(request_id, actor=STAFF_ACTOR, note=note)


def _extend(rights: RightsService, request_id: str, *, reason: str) -> None:
    rights.extend(request_id, actor=STAFF_ACTOR, reason=reason)


def _verify_request(rights: RightsService, request_id: str, *, note: str) -> None:
    rights.verify(request_id, actor=STAFF_ACTOR, note=note)


def _refuse(rights: RightsService, request_id: str, *, grounds: Refusal, reason: str) -> None:
    rights.refuse(request_id, grounds=grounds, reason=reason, actor=STAFF_ACTOR)


SCENARIOS: dict[int, Callable[[World, Resident], None]] = {
    0: _completed_requests,
    1: _extended,
    2: _held_erasure,
    3: _overdue_started,
    4: _overdue,
    5: _new_by_mail,
    6: _due_soon,
    7: _verified,
    8: _refused,
    9: _withdrawn,
    11: _due_soon_by_mail,
    12: _portability,
    13: _category_hold,
    16: _new_erasure_by_mail,
    20: _restriction_done,
}


def _disclose(world: World, who: Resident, basis: str, categories: list[str]) -> None:
    """A disclosure to the courts and authorities, approved by the privacy officer."""
    session = world.session
    world.past.disclosures(session).disclose(
        "courts_and_authorities",
        [who.subject_id],
        categories,
        "legal",
        DisclosureBasis(basis),
        "Tribunal judiciaire de Paris, synthetic case RG 26/00042"
        if basis == "court_order"
        else "Police requisition, synthetic reference 2026-PN-0193",
        world.past.staff(session).on_server(STAFF_NAME),
    )


def _releases(world: World) -> None:
    """The statistics releases to the policy's statistics recipients, once."""
    session, policy = world.session, world.past.policy
    statistics = world.past.statistics(session)
    recipients = [r.id for r in policy.recipients if r.kind == RecipientKind.STATISTICS]
    approver = world.past.staff(session).on_server(STAFF_NAME)
    for recipient in recipients:
        if statistics.releases(recipient):
            continue
        for name in ("calls_by_country", "active_rooms"):
            if policy.statistics.enabled(name):
                statistics.release(name, recipient, approver=approver)
