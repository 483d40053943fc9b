"""``frames_outcome`` (a batch of one intersection's frames, state copied once) against
``frame_outcome`` frame by frame: the same states and the same alarms, input state untouched."""

from __future__ import annotations

import copy
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from detection.incidents import DetectorValue, frame_outcome, frames_outcome

APPROACHES = ("N", "E", "S")


def _frames(seed: int, n: int, blocked_from: int) -> list[tuple[float, list[DetectorValue]]]:
    """``n`` frames 15 s apart; from ``blocked_from`` on approach N is jammed (an incident), and
    detector E1 is stuck on from 5 to 35 (a fault); some frames repeat an older time (redelivery)."""
    rng = random.Random(seed)
    out: list[tuple[float, list[DetectorValue]]] = []
    for i in range(n):
        at = 8 * 3600.0 + i * 15.0 if rng.random() > 0.1 else 8 * 3600.0 + max(0, i - 3) * 15.0
        values = []
        for a in APPROACHES:
            jam = i >= blocked_from and a == "N"
            occ = 0.9 if jam else max(0.0, rng.gauss(0.15, 0.03))
            speed = 6.0 if jam else rng.gauss(45, 3)
            values.append(DetectorValue(f"{a}1", a, max(0, int(rng.gauss(6, 2))), 1.0 if a == "E" and 5 <= i < 35 else occ, speed))
        out.append((at, values))
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 80), blocked_from=st.integers(0, 80), cut=st.integers(0, 80))
def test_batch_fold_equals_frame_by_frame(seed: int, n: int, blocked_from: int, cut: int) -> None:
    frames = _frames(seed, n, blocked_from)
    state_one: dict | None = None
    kinds_one: list[list[str]] = []
    for at, values in frames:
        state_one, out = frame_outcome(state_one, "K1", at, values)
        kinds_one.append([t.kind for t in out.triggers] + [f"clear:{k}" for k in out.clears])
    # the same frames in two batches, cut anywhere
    first, rest = frames[: min(cut, n)], frames[min(cut, n) :]
    mid, outs_a = frames_outcome(None, "K1", first)
    frozen = copy.deepcopy(mid)
    state_batch, outs_b = frames_outcome(mid, "K1", rest)
    assert mid == frozen  # the state handed in is never mutated (a table may still serialise it)
    kinds_batch = [[t.kind for t in o.triggers] + [f"clear:{k}" for k in o.clears] for o in outs_a + outs_b]
    assert kinds_batch == kinds_one
    assert state_batch == state_one


def test_a_jam_raises_one_incident_and_a_stuck_detector_one_fault() -> None:
    frames = _frames(1, 80, 60)
    _, outcomes = frames_outcome(None, "K1", frames)
    kinds = [t.kind for o in outcomes for t in o.triggers]
    assert kinds.count("incident_N") == 1
    assert kinds.count("detector_fault_E1") == 1
