"""The policy file's [statistics] section: k, per-release rules and noise, the budget;
each mistake refused with the key and the reason."""

from __future__ import annotations

from typing import Any

from factories import kallu_data, policy_refusal
from privault.policy import build_policy


def _with(statistics: dict[str, Any]) -> dict[str, Any]:
    data = kallu_data()
    data["statistics"] = statistics
    return data


def test_p3_10_k_defaults_to_ten_and_a_release_may_raise_it() -> None:
    data = kallu_data()
    del data["statistics"]
    assert build_policy(data).statistics.k_for("active_rooms") == 10
    policy = build_policy(_with({"k": 12, "releases": {"active_rooms": {"k": 25}}}))
    assert policy.statistics.k_for("active_rooms") == 25
    assert policy.statistics.k_for("calls_by_country") == 12


def test_statistics_mistakes_are_named_precisely() -> None:
    assert "statistics.k" in policy_refusal(_with({"k": 1}))
    gaussian = {"mechanism": "gaussian", "epsilon": 0.5}
    budget = {"epsilon": 1.0, "delta": 1e-6, "period": "P1M"}
    detail = policy_refusal(_with({"budget": budget, "releases": {"r": {"dp": gaussian}}}))
    assert "the gaussian mechanism needs a delta above 0" in detail
    laplace = {"mechanism": "laplace", "epsilon": 0.5, "delta": 0.1}
    detail = policy_refusal(_with({"budget": budget, "releases": {"r": {"dp": laplace}}}))
    assert "the laplace mechanism takes no delta" in detail
    noisy = {"releases": {"r": {"dp": {"mechanism": "laplace", "epsilon": 0.5}}}}
    assert "releases.r.dp: a release with dp needs [statistics.budget]" in policy_refusal(
        _with(noisy)
    )
    greedy = {"budget": budget, "releases": {"r": {"dp": {"mechanism": "laplace", "epsilon": 2}}}}
    assert "spends more than the whole budget" in policy_refusal(_with(greedy))
    assert "statistics.releases.r.mode" in policy_refusal(_with({"releases": {"r": {"mode": 1}}}))
