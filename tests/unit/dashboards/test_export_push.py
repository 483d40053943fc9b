"""``leitstand dashboards export`` and ``push``.

``push`` is tested against a small local stand-in for Grafana's HTTP API (GrafanaStandIn
below): Grafana's server cannot be installed on these machines. The stand-in implements the
three endpoints ``push`` uses (GET /api/folders/{uid}, POST /api/folders, POST
/api/dashboards/db) with Grafana's status codes and answers, and checks the bearer token.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.dashboards import FOLDER_UID, DashboardError, export, load, push

TOKEN = "glsa_stand-in-token"


class GrafanaStandIn(BaseHTTPRequestHandler):
    """A stand-in for Grafana's HTTP API (not Grafana): folders and dashboards in memory."""

    folders: dict[str, dict[str, Any]]
    dashboards: dict[str, dict[str, Any]]
    requests: list[tuple[str, str]]

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _authorised(self) -> bool:
        self.requests.append((self.command, self.path))
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._answer(401, {"message": "invalid API key"})
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        uid = self.path.removeprefix("/api/folders/")
        if self.path.startswith("/api/folders/") and uid in self.folders:
            self._answer(200, self.folders[uid])
        else:
            self._answer(404, {"message": "folder not found"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/api/folders":
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
            self._answer(200, self.folders[body["uid"]])
        elif self.path == "/api/dashboards/db":
            self._save(body)
        else:
            self._answer(404, {"message": "not found"})

    def _save(self, body: dict[str, Any]) -> None:
        dash = body["dashboard"]
        if body.get("folderUid") not in self.folders:
            self._answer(400, {"message": "folder not found"})
            return
        old = self.dashboards.get(dash["uid"])
        if old is not None and not body.get("overwrite"):
            self._answer(412, {"status": "version-mismatch", "message": "The dashboard has been changed by someone else"})
            return
        version = (old["version"] + 1) if old else 1
        self.dashboards[dash["uid"]] = {**body, "version": version}
        self._answer(200, {"status": "success", "uid": dash["uid"], "url": f"/d/{dash['uid']}/x", "version": version})


@pytest.fixture
def grafana() -> Iterator[tuple[str, type[GrafanaStandIn]]]:
    handler = type("Handler", (GrafanaStandIn,), {"folders": {}, "dashboards": {}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_push_creates_the_folder_and_uploads_every_dashboard(grafana: tuple[str, type[GrafanaStandIn]]) -> None:
    url, state = grafana
    results = push(url, load(), token=TOKEN)
    assert {r.uid for r in results} == {"leitstand-verkehr", "leitstand-baeder", "leitstand-planung"}
    assert state.folders == {FOLDER_UID: {"uid": FOLDER_UID, "title": "Leitstand"}}
    for d in load():
        stored = state.dashboards[d.uid]
        assert stored["folderUid"] == FOLDER_UID and stored["overwrite"] is True
        assert stored["dashboard"]["id"] is None  # new on any Grafana; matched by uid
        assert {k: v for k, v in stored["dashboard"].items() if k not in ("id", "version")} == {
            k: v for k, v in d.model.items() if k != "version"
        }
    # a second push overwrites by uid (version bumps) and does not create the folder again
    again = push(url, load(), token=TOKEN)
    assert {r.version for r in again} == {2}
    assert state.requests.count(("POST", "/api/folders")) == 1


def test_push_reports_grafanas_refusal_in_one_line(grafana: tuple[str, type[GrafanaStandIn]]) -> None:
    url, state = grafana
    with pytest.raises(DashboardError, match="HTTP 401") as exc:
        push(url, load(), token="wrong")
    assert "\n" not in str(exc.value)
    assert state.dashboards == {}


def test_push_command(grafana: tuple[str, type[GrafanaStandIn]], monkeypatch: pytest.MonkeyPatch) -> None:
    url, state = grafana
    runner = CliRunner()
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    done = runner.invoke(app, ["dashboards", "push", "--url", url, "--token", TOKEN])
    assert done.exit_code == 0, done.output
    assert "Verkehrsleitzentrale (leitstand-verkehr)" in done.output and len(state.dashboards) == 3
    monkeypatch.delenv("GRAFANA_PASSWORD", raising=False)
    done = runner.invoke(app, ["dashboards", "push", "--url", url])
    assert done.exit_code != 0 and "no credentials" in str(done.exception)


def test_export_writes_what_docker_compose_mounts(tmp_path: Path) -> None:
    written = export(tmp_path / "out")
    rel = {p.relative_to(tmp_path / "out").as_posix() for p in written}
    assert rel == {
        "json/verkehrsleitzentrale.json",
        "json/baederaufsicht.json",
        "json/planung.json",
        "provisioning/dashboards/leitstand.yaml",
        "provisioning/datasources/leitstand.yaml",
        "prometheus.yml",
    }
    assert [d.model for d in load(tmp_path / "out")] == [d.model for d in load()]
    # the datasource uids the dashboards' variables default to are the provisioned ones
    datasources = (tmp_path / "out/provisioning/datasources/leitstand.yaml").read_text()
    uids = dict(re.findall(r"uid: (\S+)\n\s+type: (\S+)", datasources))
    assert set(uids.values()) == {"grafana-postgresql-datasource", "prometheus"}
    for d in load():
        current = {v["name"]: v.get("current", {}).get("value") for v in d.model["templating"]["list"]}
        assert uids[current["DS_POSTGRES"]] == "grafana-postgresql-datasource"
        assert uids[current["DS_PROMETHEUS"]] == "prometheus"
    provider = (tmp_path / "out/provisioning/dashboards/leitstand.yaml").read_text()
    assert f"folderUid: {FOLDER_UID}" in provider and "path: /etc/grafana/dashboards" in provider


def test_export_refuses_a_broken_source_before_writing(tmp_path: Path) -> None:
    (tmp_path / "src" / "json").mkdir(parents=True)
    (tmp_path / "src" / "json" / "bad.json").write_text("{not json")
    with pytest.raises(DashboardError, match="not a readable JSON dashboard"):
        export(tmp_path / "out", tmp_path / "src")
    assert not (tmp_path / "out").exists()
    done = CliRunner().invoke(app, ["dashboards", "export", str(tmp_path / "out"), "--source", str(tmp_path / "src")])
    assert done.exit_code != 0 and "not a readable JSON dashboard" in str(done.exception)


def test_push_to_nothing_listening_fails_in_one_line() -> None:
    from streams.stack import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(DashboardError, match="cannot reach Grafana at") as exc:
        push(url, load(), token=TOKEN, timeout_s=2)
    assert "\n" not in str(exc.value)


def test_push_command_shows_no_url_password_and_keeps_tls_on(grafana: tuple[str, type[GrafanaStandIn]]) -> None:
    """Stop 54's probe: a user:password in --url was printed with every link and in errors, and
    grafana-client read ``?verify=false`` from the URL and turned TLS verification off silently."""
    url, state = grafana
    runner = CliRunner()
    with_password = url.replace("http://", "http://admin:hunter2@")
    done = runner.invoke(app, ["dashboards", "push", "--url", with_password, "--token", TOKEN])
    assert done.exit_code == 0, done.output
    assert "hunter2" not in done.output and len(state.dashboards) == 3
    refused = runner.invoke(app, ["dashboards", "push", "--url", url + "/?verify=false", "--token", TOKEN])
    assert refused.exit_code != 0 and "takes no query or fragment" in refused.output
    from streams.stack import free_port

    nowhere = f"http://admin:hunter2@127.0.0.1:{free_port()}"
    failed = runner.invoke(app, ["dashboards", "push", "--url", nowhere, "--token", TOKEN, "--timeout", "2"])
    assert failed.exit_code != 0 and "hunter2" not in str(failed.exception) and "cannot reach Grafana" in str(failed.exception)
