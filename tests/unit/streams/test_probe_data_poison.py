"""Records that decode but used to make an agent's own code raise (poison pills: with the
fail-stop of ``streams.ingest`` each one crash-looped the whole worker), and alarm kinds built
from valid input that the alarm books could not take or route back."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import orjson
import pytest

from detection import alarms
from detection.alarms import AlarmTrigger, EscalationPolicy
from detection.incidents import DetectorValue, frame_outcome
from streams.agents.alarm_commands import lifecycle_commands
from streams.agents.alarm_lifecycle import alert_record, apply_command
from streams.codec import DecodeFailure, TopicDecoder
from streams.records import IntersectionConfig, LifecycleCommand

NOW = time.time()
ISO = datetime.fromtimestamp(NOW, tz=timezone.utc).isoformat()


def _lifecycle(evidence: object, kind: str = "forged") -> bytes:
    return json.dumps(
        {
            "schema_version": 1,
            "event_time": ISO,
            "op": "raise",
            "subject_id": "pool-1",
            "kind": kind,
            "severity": "minor",
            "evidence": evidence,
        }
    ).encode()


def _deep(depth: int) -> object:
    v: object = 1
    for _ in range(depth):
        v = {"a": v}
    return v


LIFECYCLE = TopicDecoder(LifecycleCommand, clock_skew_s=1e12)


@pytest.mark.parametrize(
    "evidence",
    [
        {"x": 123456789012345678901234567890},  # orjson: "Integer exceeds 64-bit range"
        {"x": [-(2**64)]},
        {"x": _deep(300)},  # orjson: recursion limit (255)
        {"trigger_ids": 5},  # raise_alarm: `trigger in 5`
        {"trigger_ids": [1, 2]},
    ],
    ids=["bigint", "bigint-in-list", "deep", "trigger_ids-int", "trigger_ids-not-str"],
)
def test_lifecycle_command_whose_evidence_would_crash_the_books_is_a_decode_failure(evidence: object) -> None:
    out = LIFECYCLE.decode(_lifecycle(evidence), now=NOW)
    assert isinstance(out, DecodeFailure), out
    assert out.code == "invalid"


def test_lifecycle_command_with_ordinary_evidence_still_decodes_and_publishes() -> None:
    ev = {
        "zone": "A",
        "persons": 3,
        "confidence": 0.5,
        "nested": {"l": [1, 2.5, None, True, "x"]},
        "big": 2**63 - 1,
        "small": -(2**63),
        "trigger_ids": ["t1"],
    }
    cmd = LIFECYCLE.decode(_lifecycle(ev), now=NOW)
    assert isinstance(cmd, LifecycleCommand)
    book, changes = apply_command(None, cmd, NOW, EscalationPolicy())
    orjson.dumps(book)  # what the Faust table's changelog does
    alert_record(changes[0], NOW)


def test_intersection_config_whose_model_cannot_be_stored_is_a_decode_failure() -> None:
    dec = TopicDecoder(IntersectionConfig)
    for model in ({"x": 2**80}, _deep(300)):
        raw = json.dumps({"schema_version": 1, "event_time": ISO, "intersection_id": "K1", "model": model}).encode()
        out = dec.decode(raw, now=NOW)
        assert isinstance(out, DecodeFailure), out


def test_raise_alarm_tolerates_a_book_with_foreign_trigger_ids() -> None:
    """Books written before the evidence check may hold anything under ``trigger_ids``."""
    pol = EscalationPolicy()
    book, _ = alarms.raise_alarm(None, AlarmTrigger("p", "k", "minor", "t1", NOW, "m"), NOW, pol)
    book["open"]["k"]["evidence"]["trigger_ids"] = 5
    book, changes = alarms.raise_alarm(book, AlarmTrigger("p", "k", "minor", "t2", NOW, "m"), NOW, pol)
    assert [c.transition for c in changes] == ["occurred"]
    assert book["open"]["k"]["evidence"]["trigger_ids"] == ["t2"]


def _faults(detectors: list[DetectorValue]) -> list[LifecycleCommand]:
    """Commands of an intersection whose first detector is stuck on for ten minutes."""
    st = None
    cmds: list[LifecycleCommand] = []
    for i in range(0, 660, 60):
        st, out = frame_outcome(st, "K1", NOW - 700 + i, detectors)
        cmds += lifecycle_commands("K1", out, datetime.fromtimestamp(NOW, tz=timezone.utc), "intersection")
    return cmds


@pytest.mark.parametrize(
    "detector_id, approach",
    [
        ("d@1", "N"),  # '@' in the kind: the alarm id routed acks to subject "1@K1"
        ("D" * 64, "N"),  # detector_fault_ + 64 characters: kind over 64, dead-lettered by the books
        ("d1", "north bound"),  # a space: not an id
        ("d1", "ü@~ \u202e"),
    ],
)
def test_detector_and_incident_alarm_kinds_reach_the_books_and_route_back(detector_id: str, approach: str) -> None:
    stuck = DetectorValue(detector_id, approach, 0, 1.0, None)
    other = DetectorValue("other", "S", 5, 0.1, 30.0)
    cmds = _faults([stuck, other])
    assert cmds, "the stuck detector raised nothing"
    for c in cmds:
        back = LIFECYCLE.decode(orjson.dumps(orjson.loads(_encode(c))), now=NOW)
        assert isinstance(back, LifecycleCommand), back
        aid = alarms.alarm_id(c.kind, c.subject_id, c.trigger or "")
        assert alarms.subject_of(aid) == "K1"
        assert "@" not in c.kind
    # the detector is still named in full where people read it
    assert any(c.evidence.get("detector_id") == detector_id for c in cmds)


def test_incident_kind_for_an_approach_outside_the_id_set_reaches_the_books() -> None:
    from detection.incidents import alarm_kind_part

    for name in ("north bound", "a@b", "x" * 80, "ü", ""):
        part = alarm_kind_part(name)
        cmd = LifecycleCommand(
            schema_version=1, event_time=datetime.now(timezone.utc), op="raise", subject_id="K1", kind=f"incident_{part}"
        )
        assert isinstance(LIFECYCLE.decode(_encode(cmd), now=NOW), LifecycleCommand), name
        assert "@" not in part
    assert alarm_kind_part("N") == "N"  # ordinary names stay as they are (ids stay stable)
    assert alarm_kind_part("K3-N1") == "K3-N1"


def _encode(c: LifecycleCommand) -> bytes:
    from streams.records import encode

    return encode(c)
