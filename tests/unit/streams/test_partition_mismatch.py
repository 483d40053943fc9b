"""A worker refuses topics whose partition count is not LEITSTAND_TOPIC_PARTITIONS (streams/kafka_io.py)."""

from __future__ import annotations

from streams.kafka_io import partition_mismatch


def test_topics_with_the_configured_count_pass() -> None:
    assert partition_mismatch({"p.sensors.intersection": 4, "p.alerts": 4}, 4) is None
    assert partition_mismatch({}, 4) is None


def test_all_topics_alike_but_not_as_configured_name_the_setting_to_use() -> None:
    msg = partition_mismatch({"p.sensors.intersection": 2, "p.alerts": 2}, 4)
    assert msg is not None and "LEITSTAND_TOPIC_PARTITIONS=4" in msg and msg.endswith("set LEITSTAND_TOPIC_PARTITIONS=2")
    assert "p.alerts (2), p.sensors.intersection (2)" in msg and "\n" not in msg


def test_topics_that_differ_among_themselves_must_be_recreated_and_a_long_list_is_cut() -> None:
    counts = {f"p.t{i}": 4 for i in range(3)} | {f"p.u{i}": 8 for i in range(5)}
    msg = partition_mismatch(counts, 4)
    assert msg is not None and msg.endswith("recreate them alike") and "and 2 more" in msg
    assert "p.t0" not in msg  # the ones as configured are not named
