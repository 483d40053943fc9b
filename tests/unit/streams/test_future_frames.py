"""A frame from a device whose clock runs ahead must not blind its intersection (found by probing).

Before: the decoder accepted event times up to ``clock_skew_s`` (6 h) ahead of now; one such
frame moved the intersection's watermark hours ahead, its window closed, and every real frame
after it was dropped as late until the wall clock caught up."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

from streams import windowing
from streams.codec import DecodeFailure, TopicDecoder, decoder_limits
from streams.records import DetectorReading, IntersectionFrame, encode
from streams.settings import Settings

NOW = float(int(time.time() // 60) * 60)


def _frame(t: float) -> IntersectionFrame:
    return IntersectionFrame(
        schema_version=1,
        event_time=datetime.fromtimestamp(t, tz=timezone.utc),
        intersection_id="K1",
        interval_s=15.0,
        detectors=[DetectorReading(detector_id="D1", count=3, occupancy=0.1)],
    )


def _decoder(**limits: Any) -> TopicDecoder[IntersectionFrame]:
    """A frame decoder with ``decoder_limits(settings)`` (a plain dict of the settings' values)."""
    return TopicDecoder(IntersectionFrame, **limits)


def test_a_frame_far_ahead_of_now_is_refused_but_one_far_behind_is_not() -> None:
    dec = _decoder(**decoder_limits(Settings(_env_file=None)))
    ahead = dec.decode(encode(_frame(NOW + 3 * 3600)), now=NOW)
    assert isinstance(ahead, DecodeFailure) and ahead.code == "clock_skew" and "ahead of now" in ahead.reason
    assert isinstance(dec.decode(encode(_frame(NOW - 3 * 3600)), now=NOW), IntersectionFrame)
    assert isinstance(dec.decode(encode(_frame(NOW + 60)), now=NOW), IntersectionFrame)  # a little ahead is fine


def test_real_frames_after_a_refused_future_frame_are_aggregated() -> None:
    dec = _decoder(clock_skew_s=6 * 3600, clock_ahead_s=300)
    sent = [_frame(NOW - 120), _frame(NOW + 5 * 3600), _frame(NOW - 105), _frame(NOW - 90), _frame(NOW - 60)]
    accepted = [r for r in (dec.decode(encode(f), now=NOW) for f in sent) if isinstance(r, IntersectionFrame)]
    state, closed, late = windowing.fold(None, accepted, window_s=60, lateness_s=10, wall_now=NOW)
    assert late == 0 and len(accepted) == 4
    assert sum(a.frames for a in closed) + sum(len(w["frames"]) for w in state["windows"].values()) == 4


def test_the_stream_reference_keeps_its_symmetric_limit_for_replays() -> None:
    dec = _decoder(clock_skew_s=3600, clock_ahead_s=300, reference="stream")
    assert isinstance(dec.decode(encode(_frame(NOW - 86400 * 30)), now=NOW), IntersectionFrame)
    assert isinstance(dec.decode(encode(_frame(NOW - 86400 * 30 + 1800)), now=NOW), IntersectionFrame)


def test_a_frame_refused_for_its_clock_carries_the_record_for_the_data_quality_watch() -> None:
    """One reader decodes the topic for every fold (intersection_frames.py); the watch of device
    clocks still needs the frames the others refuse, but only ones that are otherwise valid."""
    dec = _decoder(**decoder_limits(Settings(_env_file=None)))
    ahead = dec.decode(encode(_frame(NOW + 3 * 3600)), now=NOW, key=b"K1")
    assert isinstance(ahead, DecodeFailure) and ahead.code == "clock_skew"
    assert isinstance(ahead.parsed, IntersectionFrame) and ahead.parsed.intersection_id == "K1"
    assert dec.watermark is None  # a refused frame moves nothing
    wrong_key = dec.decode(encode(_frame(NOW + 3 * 3600)), now=NOW, key=b"K2")
    assert isinstance(wrong_key, DecodeFailure) and wrong_key.code == "clock_skew" and wrong_key.parsed is None
    bad = dec.decode(b'{"schema_version": 1}', now=NOW)
    assert isinstance(bad, DecodeFailure) and bad.parsed is None
    assert dec.decode(encode(_frame(NOW)), now=NOW, key=b"K1") == _frame(NOW) and dec.watermark == NOW
