"""Which worker holds an alarm's book, and the merged listing (streams/http/owners.py)."""

from __future__ import annotations

import socket

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from streams.app import own_url
from streams.http.owners import Distribution, merged, owner_of, partition_of, peers
from streams.settings import Settings

TOPIC = "leitstand-alarm-books-changelog"
A, B = "http://127.0.0.1:7001", "http://127.0.0.1:7002"


@given(st.binary(min_size=1, max_size=40), st.integers(1, 64))
def test_partition_is_the_producers_partition(key: bytes, n: int) -> None:
    """The API must look where the producer wrote: aiokafka's default partitioner is the judge."""
    assert partition_of(key, n) == DefaultPartitioner()(key, list(range(n)), list(range(n)))


def test_a_key_is_owned_by_the_worker_holding_its_partition() -> None:
    dist = {A: {TOPIC: [0, 2]}, B: {TOPIC: [1, 3], "other-changelog": [0]}}
    for subject in (f"P{i:02d}" for i in range(40)):
        p = partition_of(subject.encode(), 4)
        assert owner_of(subject.encode(), dist, TOPIC) == (A if p in (0, 2) else B)


def test_nobody_owns_a_key_while_the_map_misses_a_partition() -> None:
    """Mid-rebalance the map can miss partitions: a guess would send the request to a worker
    that does not hold the book, so there is no answer instead."""
    assert owner_of(b"P01", {A: {TOPIC: [0, 2]}, B: {TOPIC: [3]}}, TOPIC) is None
    assert owner_of(b"P01", {}, TOPIC) is None
    assert owner_of(b"P01", {A: {"other": [0]}}, TOPIC) is None


def test_peers_are_the_other_holders_once_each() -> None:
    dist: Distribution = {A: {TOPIC: [0, 1]}, B: {TOPIC: [2, 3]}, "http://idle:1": {TOPIC: []}}
    assert peers(dist, TOPIC, A) == [B]
    assert peers(dist, TOPIC, "http://elsewhere:1") == [A, B]


def test_merged_listing_has_each_alarm_once_sorted_by_severity_then_time() -> None:
    one = [{"alarm_id": "x", "severity": "minor", "raised_at": "2026-12-02T06:00:00+00:00"}]
    two = [
        {"alarm_id": "y", "severity": "critical", "raised_at": "2026-12-02T07:00:00+00:00"},
        {"alarm_id": "x", "severity": "minor", "raised_at": "2026-12-02T06:00:00+00:00"},
        {"alarm_id": "z", "severity": "critical", "raised_at": "2026-12-02T05:00:00+00:00"},
    ]
    assert [a["alarm_id"] for a in merged([one, two])] == ["z", "y", "x"]
    assert merged([]) == []


def test_own_url_brackets_ipv6() -> None:
    assert own_url("127.0.0.1", 6066) == "http://127.0.0.1:6066"
    assert own_url("::1", 6066) == "http://[::1]:6066"
    assert own_url("[::1]", 6066) == "http://[::1]:6066"
    # bound to every interface: the URL must still name this host, never 0.0.0.0
    assert own_url("0.0.0.0", 6066) == own_url("::", 6066) == f"http://{socket.gethostname()}:6066"


@pytest.mark.parametrize(
    "bad",
    [
        "ftp://host:1",
        "host:6066",
        "http://",
        "http://host:1/api",
        "http://host:1/?x=1",
        "http://host:99999",
        "http://host:x",
        "http://ops:secret@host:1",  # a password here would be shown by `leitstand config`
        "http://host:1#x",
    ],
)
def test_an_advertised_url_that_is_not_an_origin_is_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="advertised_url"):
        Settings(_env_file=None, advertised_url=bad)


def test_an_advertised_url_is_kept_without_its_slash() -> None:
    assert Settings(_env_file=None, advertised_url="http://10.0.0.5:6066/").advertised_url == "http://10.0.0.5:6066"
