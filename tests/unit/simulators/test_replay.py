"""Dataset replay: one record per row, dataset timing kept, bad rows passed on for dead-lettering."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from simulators.replay import replay_rows


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "data.csv"
    p.write_text(text)
    return p


def test_rows_become_records_with_offsets_from_the_first_time(tmp_path: Path) -> None:
    p = write(
        tmp_path, "timestamp,value,pool_id\n2015-09-01 10:00:00,7.1,P1\n2015-09-01 10:05:00,7,P2\n,8.5,P1\n2015-09-01 10:02:00,x,P1\n"
    )
    rows = list(replay_rows(p, "timestamp", "pool_id"))
    assert [r[0] for r in rows] == [0.0, 300.0, 300.0, 300.0]  # never earlier than the row before
    first = orjson.loads(rows[0][2])
    assert first == {"schema_version": 1, "value": 7.1, "pool_id": "P1", "event_time": "2015-09-01T10:00:00+00:00"}
    assert orjson.loads(rows[1][2])["value"] == 7 and rows[1][1] == b"P2"
    assert orjson.loads(rows[2][2])["event_time"] == ""  # sent anyway: the worker dead-letters it
    assert orjson.loads(rows[3][2])["value"] == "x"


def test_missing_column_is_named(tmp_path: Path) -> None:
    p = write(tmp_path, "time,value\n2015-09-01 10:00:00,1\n")
    with pytest.raises(KeyError, match="no column 'timestamp'"):
        list(replay_rows(p, "timestamp"))
