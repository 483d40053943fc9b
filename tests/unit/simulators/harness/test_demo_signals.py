"""The demo's side of the signal closed loop, without a broker: configs, drive messages steering
the city, proposals for the operator, the summary the report reads."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from signals.loader import ensure_safe, intersection_from_dict
from simulators.city import CityConfig
from simulators.city.traffic import build_grid
from simulators.harness.demo_signals import SignalDemo, advisory_junctions, signal_configs
from streams.records import PlanPhase, SignalPlanMessage

AT = datetime(2026, 7, 2, 5, 0, tzinfo=timezone.utc)


def _msg(
    iid: str, status: str, phases: list[tuple[str, float]], rule: str = "webster_recompute", session: str = "run", **kw: object
) -> SignalPlanMessage:
    return SignalPlanMessage(
        event_time=AT,
        intersection_id=iid,
        plan_id=f"{iid}@1",
        session=session,
        time_s=AT.timestamp(),
        origin_s=AT.timestamp(),
        cyclic=True,
        phases=[PlanPhase(s, g) for s, g in phases],
        mode="automatic",
        status=status,
        controller="webster",
        version="1.0",
        rule=rule,
        explanation={"inputs": {"Y": 0.5}, "expected_effect": "minimises average delay"},
        **kw,  # type: ignore[arg-type]
    )


def test_configs_one_per_junction_safe_with_advisory_ones() -> None:
    grid = build_grid(CityConfig(intersections=6))
    advisory = advisory_junctions(grid)
    assert advisory == ("K2", "K5")
    configs = signal_configs(grid, session="run", advisory=advisory, speed=500, at=AT)
    assert [c.intersection_id for c in configs] == [j.intersection_id for j in grid]
    assert {c.intersection_id for c in configs if c.mode == "advisory"} == set(advisory)
    assert all(c.controller == "webster" and c.approval_timeout_s >= 600 for c in configs)
    for c in configs:
        ensure_safe(intersection_from_dict(c.model))
    assert advisory_junctions(build_grid(CityConfig(intersections=1))) == ()


def test_drive_messages_steer_the_city_and_proposals_go_to_the_operator() -> None:
    grid = build_grid(CityConfig(intersections=4))
    demo = SignalDemo.for_grid(grid, "run", random.Random(1))
    assert demo.modes == {"K1": "automatic", "K2": "advisory", "K3": "advisory", "K4": "automatic"}
    assert not demo.on_plan(_msg("K1", "active", [("A", 30.0), ("B", 30.0)], rule="webster_initial_program"))
    assert demo.loop.current["K1"].by_approach["N"] == pytest.approx(30 / 68)
    demo.on_plan(_msg("K1", "active", [("A", 30.0), ("B", 30.0)], rule="webster_initial_program"))  # the same plan again
    demo.on_plan(_msg("K1", "active", [("A", 40.0), ("B", 20.0)]))
    demo.on_plan(_msg("K1", "active", [("A", 40.0), ("B", 20.0)], session="old"))  # another run's: ignored
    assert demo.loop.current["K1"].by_approach["N"] == pytest.approx(40 / 68) and demo.foreign == 1
    approvals = [demo.on_plan(_msg("K2", "pending", [("A", 35.0), ("B", 25.0)])) for _ in range(20)]
    assert 0 < sum(approvals) < 20  # about half approved, the rest left to expire
    demo.on_plan(_msg("K2", "expired", [("A", 35.0), ("B", 25.0)]))
    demo.on_plan(_msg("K2", "approved", [("A", 35.0), ("B", 25.0)]))
    demo.on_plan(_msg("K2", "fixed", [("A", 30.0), ("B", 30.0)], rule="fixed_program"))
    demo.on_plan(_msg("K2", "active", [("A", 35.0), ("B", 25.0)]))  # the approved plan drives: no new decision
    assert demo.loop.current["K2"].by_approach["E"] == pytest.approx(25 / 68)
    s = demo.summary()
    k1, k2 = s["intersections"]["K1"], s["intersections"]["K2"]
    assert k1["decisions"] == 2 and k1["rules"] == {"webster_initial_program": 1, "webster_recompute": 1} and k1["frames_answered"] == 3
    assert [e["rule"] for e in k1["examples"]] == ["webster_initial_program", "webster_recompute"]
    assert k1["examples"][1]["summary"].startswith("[webster 1.0] webster_recompute: Y=0.5")
    assert "proposals" not in k1
    assert k2["proposals"] == 20 and k2["approved"] == 1 and k2["expired"] == 1 and k2["pending_at_end"] == 18
    assert k2["drive_statuses"] == {"fixed": 1, "active": 1} and k2["decisions"] == 20
    assert set(s["intersections"]) == {"K1", "K2", "K3", "K4"} and s["intersections"]["K1"]["delay"]["frames"] == 0
    assert "approved 1, expired 1" in demo.status_line()
