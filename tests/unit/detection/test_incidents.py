"""Traffic incidents against neighbours and own profile; detector faults."""

from __future__ import annotations

import math
import random
from collections.abc import Set as AbstractSet

from hypothesis import given
from hypothesis import strategies as st

from detection.incidents import DetectorValue, IncidentConfig, frame_outcome

APPROACHES = ("N", "E", "S", "W")


def frame(
    rng: random.Random,
    occ: dict[str, float] | None = None,
    speed: dict[str, float] | None = None,
    drop: AbstractSet[str] = frozenset(),
    override: dict[str, tuple[int, float]] | None = None,
) -> list[DetectorValue]:
    out = []
    for a in APPROACHES:
        for lane in (1, 2):
            did = f"{a}{lane}"
            if did in drop:
                continue
            o = max(0.0, min(1.0, (occ or {}).get(a, 0.12) + rng.gauss(0, 0.02)))
            count = max(0, int(rng.gauss(6, 1.5)))
            if override and did in override:
                count, o = override[did]
            out.append(DetectorValue(did, a, count, o, (speed or {}).get(a, 45.0) + rng.gauss(0, 2)))
    return out


def run(frames: list[list[DetectorValue]], start: float = 8 * 3600.0, step: float = 15.0):
    state, triggers, clears = None, [], []
    for i, f in enumerate(frames):
        state, out = frame_outcome(state, "K1", start + i * step, f)
        triggers += [(i, t.kind) for t in out.triggers]
        clears += [(i, k) for k in out.clears]
    return state, triggers, clears


def test_blocked_approach_raises_after_confirmation_and_clears() -> None:
    rng = random.Random(1)
    normal = [frame(rng) for _ in range(60)]
    blocked = [frame(rng, occ={"N": 0.65}, speed={"N": 8.0}) for _ in range(10)]
    after = [frame(rng) for _ in range(10)]
    _, triggers, clears = run(normal + blocked + after)
    assert triggers == [(62, "incident_N")]  # third blocked frame
    assert clears == [(72, "incident_N")]


def test_citywide_rush_is_not_an_incident() -> None:
    rng = random.Random(2)
    normal = [frame(rng) for _ in range(60)]
    rush = [frame(rng, occ={a: 0.6 for a in APPROACHES}, speed={a: 15.0 for a in APPROACHES}) for _ in range(20)]
    assert run(normal + rush)[1] == []


def test_a_short_spike_is_not_an_incident() -> None:
    rng = random.Random(3)
    frames = [frame(rng) for _ in range(60)] + [frame(rng, occ={"E": 0.7}, speed={"E": 5.0}) for _ in range(2)]
    assert run(frames + [frame(rng) for _ in range(5)])[1] == []


def test_no_incident_before_the_profile_is_learned() -> None:
    rng = random.Random(4)
    assert run([frame(rng, occ={"N": 0.7}, speed={"N": 5.0}) for _ in range(15)])[1] == []


def test_detector_faults_stuck_on_dead_and_silent() -> None:
    rng = random.Random(5)
    cfg = IncidentConfig()
    n_stuck = int(cfg.stuck_on_s / 15) + 2
    stuck = [frame(rng, override={"S2": (0, 1.0)}) for _ in range(n_stuck)]
    _, triggers, _ = run(stuck)
    assert "detector_fault_S2" in {k for _, k in triggers}
    n_dead = int(cfg.dead_after_s / 15) + 2
    _, triggers, _ = run([frame(rng, override={"W1": (0, 0.0)}) for _ in range(n_dead)])
    assert {k for _, k in triggers} == {"detector_fault_W1"}
    n_silent = int(cfg.silent_after_s / 15) + 2
    _, triggers, clears = run([frame(rng)] + [frame(rng, drop={"E1"}) for _ in range(n_silent)] + [frame(rng)])
    assert {k for _, k in triggers} == {"detector_fault_E1"} and {k for _, k in clears} == {"detector_fault_E1"}


values = st.builds(
    DetectorValue,
    st.sampled_from(["a", "b", "c"]),
    st.sampled_from(["N", "S"]),
    st.integers(0, 100),
    st.floats(0, 1),
    st.none() | st.floats(0, 200),
)


@given(
    st.lists(
        st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.lists(values, max_size=4, unique_by=lambda v: v.detector_id)),
        max_size=40,
    )
)
def test_never_raises_and_raise_clear_alternate(frames) -> None:
    state, seen = None, dict[str, bool]()
    for t, f in frames:
        state, out = frame_outcome(state, "K1", t, f)
        for trig in out.triggers:
            assert seen.get(trig.kind) is not True and math.isfinite(trig.at)
            seen[trig.kind] = True
        for kind in out.clears:
            assert seen.get(kind) is True
            seen[kind] = False
