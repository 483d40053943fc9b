"""The CLI explains itself and fails in one line (no broker needed for these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.stack import free_port
from tests.cli_helpers import leitstand, one_clean_line

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs


def test_help_lists_every_command_with_one_line_each() -> None:
    proc = leitstand("--help")
    assert proc.returncode == 0
    commands = proc.stdout.split("Commands:")[1].strip().splitlines()
    names = {c.split()[0] for c in commands}
    assert {"config", "worker", "produce", "tail", "demo", "broker", "topics", "simulate", "bench", "detect"} <= names
    for c in commands:
        assert not c.rstrip().endswith("..."), f"help line truncated: {c!r}"
    for group in ("bench", "simulate", "broker", "topics", "forecast", "events"):
        sub = leitstand(group, "--help").stdout.split("Commands:")[1].strip().splitlines()
        assert sub and all(not c.rstrip().endswith("...") for c in sub), (group, sub)


def test_bad_argument_is_one_line() -> None:
    line = one_clean_line(leitstand("broker", "start", "--engine", "zookeeper"))
    assert "choose one of tansu, kafka" in line


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    line = one_clean_line(leitstand("config", env={"LEITSTAND_TOPIC_PARTITIONS": "0"}))
    assert "topic_partitions" in line


def test_config_masks_secrets() -> None:
    proc = leitstand(
        "config", "--json", env={"LEITSTAND_API_TOKEN": "topsecret-" + "x" * 32, "LEITSTAND_POSTGRES_DSN": "postgresql://a:pw@h/db"}
    )
    assert proc.returncode == 0
    assert "topsecret" not in proc.stdout and ":pw@" not in proc.stdout
    assert "postgresql://a:***@h/db" in proc.stdout


def test_worker_with_unreachable_broker_fails_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    line = one_clean_line(leitstand("-b", f"127.0.0.1:{port}", "--state-dir", str(tmp_path), "worker", timeout=60))
    assert f"no Kafka broker answers at 127.0.0.1:{port}" in line


def test_produce_missing_file_fails_in_one_line(tmp_path: Path) -> None:
    line = one_clean_line(leitstand("produce", "sensors.intersection", "-f", str(tmp_path / "nope.jsonl")))
    assert "no such file" in line


def test_an_unforeseen_failure_is_one_line_with_the_trace_in_a_private_file(tmp_path: Path) -> None:
    """The last guard of ``main``: a state directory that is a file ended in a stack trace (stop 55's
    probe found a dozen such inputs); now one line says what happened and where the trace is."""
    not_a_dir = tmp_path / "state"
    not_a_dir.write_text("")
    line = one_clean_line(leitstand("--state-dir", str(not_a_dir), "broker", "start"))
    assert line.startswith("error: unexpected NotADirectoryError") and "please report it" in line
    trace = Path(line.split("the details are in ", 1)[1].split(";", 1)[0])
    assert "Traceback" in trace.read_text() and trace.stat().st_mode & 0o777 == 0o600
    trace.unlink()


def test_signals_pending_does_not_send_a_token_in_clear_across_the_network(tmp_path: Path) -> None:
    """It sent LEITSTAND_API_TOKEN (the write token when no read token is set) to any --url,
    over plain http too, and a malformed URL ended in a trace (stop 55's probe)."""
    env = {"LEITSTAND_API_TOKEN": "abcdefghijklmnopqrstuvwxyz123456", "LEITSTAND_STATE_DIR": str(tmp_path)}
    for url, said in (("http://10.0.0.5:6066", "only over https"), ("notaurl", "http(s)://host:port"), ("http://[::1", "not a URL")):
        assert said in one_clean_line(leitstand("signals", "pending", "--url", url, env=env))


def test_config_piped_is_whole_lines_not_a_table_cut_to_80_columns(tmp_path: Path) -> None:
    env = {"LEITSTAND_STATE_DIR": str(tmp_path), "LEITSTAND_KAFKA_BOOTSTRAP_SERVERS": "broker-1.city.example:9093"}
    shown = leitstand("config", env=env)
    assert shown.returncode == 0, shown.stderr
    rows = dict((line.split("\t")[0], line.split("\t")[1:]) for line in shown.stdout.splitlines())
    assert rows["kafka_bootstrap_servers"] == ["broker-1.city.example:9093", "LEITSTAND_KAFKA_BOOTSTRAP_SERVERS"]
