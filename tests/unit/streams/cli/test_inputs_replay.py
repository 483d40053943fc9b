"""`leitstand replay` / `produce` inputs that need no broker: bad files and unknown topics (#14).

Each is refused in one line before the broker is contacted (the tests point at a closed port,
so reaching it would fail differently). Sending, counting and fuzzing with a broker are in
tests/integration/test_produce_inputs.py.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.replay import ReplayError, check_csv, replay_records
from streams.stack import free_port
from streams.topics import CATALOGUE_NAMES, TopicError, check_topic
from tests.cli_helpers import leitstand, one_clean_line
from tests.fuzzing import budget
from tests.unit.streams.cli.test_inputs_support import invoke

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs


@pytest.fixture
def nowhere() -> dict[str, str]:
    """Settings pointing at a closed port: a command that gets as far as the broker fails differently."""
    return {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}


def test_replay_of_a_binary_file_is_one_line(tmp_path: Path, nowhere: dict[str, str]) -> None:
    p = tmp_path / "photo.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8\xff" * 50)
    line = one_clean_line(leitstand("replay", str(p), "--topic", "sensors.pool", env=nowhere, timeout=60))
    assert "is not UTF-8 text" in line and "photo.csv" in line  # was UnicodeDecodeError


def test_replay_of_csv_beyond_the_field_limit_is_one_line(tmp_path: Path, nowhere: dict[str, str]) -> None:
    p = tmp_path / "big.csv"
    p.write_bytes(b'timestamp,value\n2015-09-01T10:00:00,1\n2015-09-01T10:01:00,"' + b"x" * 200_000 + b'"\n')
    line = one_clean_line(leitstand("replay", str(p), "--topic", "sensors.pool", env=nowhere, timeout=60))
    assert "not a readable CSV file (line 3" in line


@pytest.mark.parametrize("command", [["replay", "{csv}", "--topic", "no.such.topic"], ["produce", "no.such.topic", "-f", "{jsonl}"]])
def test_unknown_topic_is_refused_listing_the_catalogue(tmp_path: Path, nowhere: dict[str, str], command: list[str]) -> None:
    (tmp_path / "in.csv").write_text("timestamp,value\n2015-09-01T10:00:00,1\n")
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    args = [a.format(csv=tmp_path / "in.csv", jsonl=tmp_path / "in.jsonl") for a in command]
    line = one_clean_line(leitstand(*args, env=nowhere, timeout=60))
    assert "unknown topic 'no.such.topic'" in line and "--create" in line
    assert all(name in line for name in CATALOGUE_NAMES)


@pytest.mark.parametrize(
    "command", [["replay", "{csv}", "--topic", "bad topic!", "--create"], ["produce", "bad topic!", "--create", "-f", "{jsonl}"]]
)
def test_create_still_needs_a_legal_kafka_name(tmp_path: Path, nowhere: dict[str, str], command: list[str]) -> None:
    (tmp_path / "in.csv").write_text("timestamp,value\n2015-09-01T10:00:00,1\n")
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    args = [a.format(csv=tmp_path / "in.csv", jsonl=tmp_path / "in.jsonl") for a in command]
    assert "not a valid topic name" in one_clean_line(leitstand(*args, env=nowhere, timeout=60))


def test_markup_like_topic_name_is_printed_verbatim(nowhere: dict[str, str]) -> None:
    """Rich markup in a name must neither vanish nor crash the error console."""
    code, line = invoke("produce", "[/x]", env=nowhere)
    assert code == 1 and "unknown topic '[/x]'" in line


def test_check_topic() -> None:
    assert check_topic("sensors.pool") == "sensors.pool"
    assert check_topic("my.topic", create=True, prefix="t1.") == "my.topic"
    for name, create in (("sensors.pools", False), ("", True), ("a/b", True), ("x" * 250, True)):
        with pytest.raises(TopicError):
            check_topic(name, create=create)


def test_row_numbers_and_huge_numbers(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("timestamp,v\n2015-09-01T10:00:00," + "9" * 30 + "\n99999999999999999,1\n")
    rows = list(replay_records(p, "timestamp"))
    assert [r[0] for r in rows] == [2, 3]
    assert orjson.loads(rows[0][3])["v"] == 1e30  # beyond int64: kept a float, JSON stays valid
    assert orjson.loads(rows[1][3])["event_time"] == "99999999999999999"  # no datetime: sent raw, dead-lettered


# --- fuzzing: any file, refused in one line or read; never a traceback ------------------------

CSV_CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "0",
            "-1",
            "1.5",
            "1e400",
            "9" * 40,
            "nan",
            "inf",
            "2015-09-01T10:00:00",
            "2015-09-01 10:00",
            "1441101600",
            "99999999999999999",
            "-99999999999999",
            "0001-01-01",
            "9999-12-31T23:59:59+14:00",
            '"',
            '""',
            "a,b",
            "x\ny",
            "\x00",
            "[/x]",
            "[bold]",
        ]
    ),
    st.text(max_size=20),
)


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    header = draw(
        st.lists(st.sampled_from(["timestamp", "value", "pool_id", "", "[/x]", "é"]) | st.text(max_size=8), min_size=0, max_size=5)
    )
    rows = draw(st.lists(st.lists(CSV_CELLS, max_size=6), max_size=8))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    text = "\n".join(sep.join(r) for r in [header, *rows])
    raw = text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])), errors="replace")
    return raw


FILES = st.one_of(csv_files(), st.binary(max_size=400))


@pytest.mark.fuzz
@budget(60)
@given(data=FILES)
def test_fuzz_csv_reader_reads_or_refuses(data: bytes) -> None:
    """Any bytes: every row becomes valid JSON, or the file is refused as a whole with a ReplayError."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.csv"
        p.write_bytes(data)
        try:
            n = check_csv(p, "timestamp")
        except KeyError as exc:
            assert "no column" in exc.args[0]
            return
        except ReplayError as exc:
            assert "\n" not in str(exc)
            return
        records = list(replay_records(p, "timestamp"))
        assert len(records) == n
        for _, offset, _, value in records:
            assert offset >= 0
            assert isinstance(orjson.loads(value), dict)


@pytest.mark.fuzz
def test_fuzz_replay_and_produce_refuse_bad_input_in_one_line(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Without a broker: a file or topic is refused in one line, or the command gets to the broker."""
    tmp = tmp_path_factory.mktemp("fuzz-nobroker")
    env = {"LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    topics = st.one_of(st.sampled_from(sorted(CATALOGUE_NAMES)), st.text(max_size=12))

    @budget(30)
    @given(data=FILES, topic=topics, create=st.booleans())
    def check(data: bytes, topic: str, create: bool) -> None:
        p = tmp / "f.csv"
        p.write_bytes(data)
        extra = ["--create"] if create else []
        for args in (["replay", str(p), "--topic", topic, *extra], ["produce", topic, "-f", str(p), *extra]):
            code, text = invoke(*args, env=env)
            assert code != 0 and text.startswith("error: "), text  # no broker: never a success

    check()


def test_replay_keys_a_keyed_topic_by_its_entity_column(tmp_path: Path) -> None:
    """Unkeyed records of a keyed topic are dead-lettered (key_missing), so without --key-col a
    file with the entity's column is keyed by it; other files and topics are left as they are."""
    from streams.cli.run import default_key_column

    pools = tmp_path / "pools.csv"
    pools.write_text("\ufefftimestamp,pool_id,ph\n2026-01-01T00:00:00Z,P1,7.1\n", encoding="utf-8")
    plain = tmp_path / "plain.csv"
    plain.write_text("timestamp,value\n2026-01-01T00:00:00Z,1\n")
    assert default_key_column(pools, "sensors.pool") == "pool_id"
    assert default_key_column(plain, "sensors.pool") is None
    assert default_key_column(pools, "forecasts") is None  # not a keyed topic
    assert default_key_column(tmp_path / "missing.csv", "sensors.pool") is None


def test_an_output_that_is_the_input_is_refused_and_the_input_kept(tmp_path: Path) -> None:
    """``detect m.csv -o m.csv`` replaced a four-column CSV with timestamp,value,anomaly_score."""
    data = tmp_path / "m.csv"
    text = "timestamp,value,extra\n2026-01-01T00:00:00Z,1,a\n2026-01-01T01:00:00Z,2,b\n"
    data.write_text(text)
    line = one_clean_line(leitstand("detect", str(data), "--output", str(tmp_path / "." / "m.csv")))
    assert "is the input file" in line and data.read_text() == text
    args = ("forecast", "backtest", str(data), "-o", str(data), "--first-origin", "2026-01-01", "--last-origin", "2026-01-02")
    assert "is the input file" in one_clean_line(leitstand(*args)) and data.read_text() == text
