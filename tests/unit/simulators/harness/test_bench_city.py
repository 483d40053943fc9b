"""The city-scale benchmark's pure parts: latency quantiles from the workers' histogram counters,
records behind per group, the generated load (every record decodes; the rates are kept), and the
signal model each intersection is configured with (no broker; the run itself is
tests/integration/test_bench_city.py)."""

from __future__ import annotations

import json
import math
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signals.loader import ensure_safe, intersection_from_dict, model_document
from simulators.harness.bench_city import (
    CityLoad,
    CityLoadGenerator,
    add_buckets,
    behind_summary,
    latency_buckets,
    latency_summary,
    quantile,
)
from simulators.harness.bench_signal_configs import bench_model
from streams.codec import DecodeFailure, TopicDecoder
from streams.records import INPUT_RECORDS
from streams.settings import Settings

BOUNDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)


def _cumulative(observations: list[float]) -> list[tuple[float, float]]:
    return [(le, float(sum(1 for x in observations if x <= le))) for le in BOUNDS]


def test_latency_buckets_read_one_histogram_per_path_from_the_samples() -> None:
    samples = {
        'leitstand_event_to_output_seconds_bucket{le="0.05",path="camera_to_alarm"}': 3.0,
        'leitstand_event_to_output_seconds_bucket{le="+Inf",path="camera_to_alarm"}': 4.0,
        'leitstand_event_to_output_seconds_bucket{le="0.1",path="frame_to_decision"}': 7.0,
        'leitstand_event_to_output_seconds_count{path="camera_to_alarm"}': 4.0,
        'leitstand_alarm_ack_seconds_bucket{le="1.0",severity="critical"}': 9.0,
    }
    assert latency_buckets(samples) == {"camera_to_alarm": [(0.05, 3.0), (math.inf, 4.0)], "frame_to_decision": [(0.1, 7.0)]}


def test_quantile_interpolates_within_the_bucket_like_prometheus() -> None:
    # 100 observations: 50 in (0, 0.05], 40 in (0.05, 0.1], 10 in (0.1, 0.25]
    buckets = [(0.05, 50.0), (0.1, 90.0), (0.25, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.05)
    assert quantile(0.7, buckets) == pytest.approx(0.075)
    assert quantile(0.99, buckets) == pytest.approx(0.1 + 0.15 * 0.9)
    assert quantile(0.5, [(0.05, 0.0), (math.inf, 0.0)]) is None
    # beyond the last finite bound the histogram knows no more than that bound
    assert quantile(0.99, [(0.05, 1.0), (math.inf, 100.0)]) == 0.05


@given(st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=1, max_size=200), st.floats(min_value=0.01, max_value=0.99))
def test_a_quantile_lies_in_the_bucket_holding_the_true_one(xs: list[float], q: float) -> None:
    """Whatever the observations, the estimate is within the bucket that holds the true order
    statistic: the precision is the buckets', never worse."""
    est = quantile(q, _cumulative(xs))
    assert est is not None
    true = sorted(xs)[max(0, math.ceil(q * len(xs)) - 1)]
    upper = next(le for le in BOUNDS if true <= le)
    lower = max([0.0, *(le for le in BOUNDS if le < upper)])
    assert lower - 1e-9 <= est <= (upper if not math.isinf(upper) else BOUNDS[-2]) + 1e-9


def test_a_snapshot_subtracted_leaves_only_the_interval() -> None:
    before = {"camera_to_alarm": _cumulative([0.01] * 100)}  # warm-up: fast
    after = {"camera_to_alarm": _cumulative([0.01] * 100 + [0.7] * 10)}  # the interval: slow
    interval = add_buckets(after, before, -1.0)
    summary = latency_summary(interval)["camera_to_alarm"]
    assert summary["outputs"] == 10
    p50, p99 = summary["p50_s"], summary["p99_s"]
    assert p50 is not None and p99 is not None and 0.5 <= p50 <= 1.0 and 0.5 <= p99 <= 1.0
    both = add_buckets({"x": [(0.1, 1.0)]}, {"x": [(0.1, 2.0)], "y": [(0.1, 5.0)]})
    assert both == {"x": [(0.1, 3.0)], "y": [(0.1, 5.0)]}


def test_a_group_that_falls_behind_did_not_keep_up() -> None:
    start = {("g-telemetry", "sensors.intersection"): 500, ("g-critical", "pool.supervision"): 1}
    end = {("g-telemetry", "sensors.intersection"): 60_500, ("g-critical", "pool.supervision"): 0}
    ages = {("g-telemetry", "sensors.intersection"): 31.5}
    out = behind_summary(start, end, {"sensors.intersection": 2000.0, "pool.supervision": 1.0}, 120.0, ages)
    assert out["g-telemetry/sensors.intersection"] == {
        "behind_at_start": 500,
        "behind_at_end": 60_500,
        "behind_growth_per_s": 500.0,
        "oldest_unread_s": 31.5,
        "kept_up": False,
    }
    assert out["g-critical/pool.supervision"]["oldest_unread_s"] == 0.0  # nothing unread
    assert out["g-critical/pool.supervision"]["kept_up"] is True
    # a busy output topic: more records behind than at the start, but only a commit interval old
    busy = behind_summary({("g", "alerts"): 3}, {("g", "alerts"): 23}, {}, 90.0, {("g", "alerts"): 1.4})
    assert busy["g/alerts"]["kept_up"] is True
    # without an age: a commit interval's worth of records behind is not falling behind
    assert behind_summary({}, {("g", "t"): 5_000}, {"t": 2000.0}, 120.0)["g/t"]["kept_up"] is True
    assert behind_summary({}, {("g", "t"): 50_000}, {"t": 2000.0}, 120.0)["g/t"]["kept_up"] is False


def test_every_generated_record_decodes_and_the_rates_are_kept() -> None:
    load = CityLoad(intersections=30, detectors=12, buses=50, pools=3, camera_events_per_s=2.0)
    gen = CityLoadGenerator(Settings(_env_file=None), load)
    now = time.time()
    ticks = 50  # five seconds
    for topic, rate in load.offered_per_s().items():
        decoder = TopicDecoder(INPUT_RECORDS[topic])
        made = 0
        for _ in range(ticks):
            n = gen._take(topic)
            for key, value in gen._records(topic, n, now):
                record = decoder.decode(value, now=now, key=key)
                assert not isinstance(record, DecodeFailure), (topic, record, value[:200])
            gen.sent[topic] += n
            made += n
        assert abs(made - rate * ticks * gen.TICK_S) <= 1, (topic, made)
    frame = next(iter(gen._records("sensors.intersection", 1, now)))[1]
    assert len(json.loads(frame)["detectors"]) == 12


def test_every_bench_intersection_model_loads_and_is_safe() -> None:
    detectors = [f"D{j}" for j in range(1, 13)]
    model = ensure_safe(intersection_from_dict(model_document(json.dumps(bench_model("INT-0001", detectors)))))
    assert {lane.id for lane in model.lanes} == set(detectors)
    assert {lane.group for lane in model.lanes} == {"NS", "EW"}


def test_each_pool_breaks_the_ph_limit_once_per_cycle_and_the_real_rules_alarm_it() -> None:
    """The run times water alarms only if its readings raise them: through the real water rules
    (sensor screening first, so a jump the fault detector calls impossible would show up as a
    sensor alarm instead), each pool raises one pH alarm per cycle and clears it again."""
    from detection.pool_watch import PoolProfile, reading_outcome
    from detection.water_rules import limits_for
    from streams.records import PoolReading

    settings = Settings(_env_file=None)
    profile = PoolProfile(limits_for(settings.pool_basin_default, None, settings.water_min_duration_s))
    load = CityLoad(intersections=0, buses=0, pools=3, pool_readings_per_s=4.0)
    gen = CityLoadGenerator(settings, load)
    decoder = TopicDecoder(PoolReading)
    raised: dict[str, list[str]] = {}
    cleared: dict[str, list[str]] = {}
    state: dict[str, dict] = {}
    start = 1_800_000_000.0
    for tick in range(int(2 * load.EXCURSION_EVERY_S / gen.TICK_S)):
        now = start + tick * gen.TICK_S
        n = gen._take("sensors.pool")
        for _, value in gen._records("sensors.pool", n, now):
            r = decoder.decode(value, now=now)
            assert isinstance(r, PoolReading)
            state[r.pool_id], out = reading_outcome(state.get(r.pool_id), r.pool_id, now, r.values(), r.visitors, profile)
            raised.setdefault(r.pool_id, []).extend(t.kind for t in out.triggers)
            cleared.setdefault(r.pool_id, []).extend(out.clears)
        gen.sent["sensors.pool"] += n
    assert set(raised) == {"pool-0", "pool-1", "pool-2"}
    for pool, kinds in raised.items():
        assert len(kinds) in (1, 2) and set(kinds) == {kinds[0]} and "ph" in kinds[0], (pool, kinds)  # two cycles, one kind
        assert kinds[0] in cleared[pool], (pool, cleared[pool])
    assert CityLoad(pools=3, ph_excursions=False).ph_out_of_range(0, start) is False
