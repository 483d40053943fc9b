"""PostgreSQL on loopback for the tests: a real server per test session, a fresh database per test.

``postgres`` (session): initdb into a temporary directory, start the server on 127.0.0.1 on a
free port (Unix socket in the same directory, fsync off: the data dies with the session), yield
its DSN, stop it at the end. PostgreSQL refuses to run as root, so as root the server runs as
the ``postgres`` system user (``runuser``) in a directory that user owns. ``pg_database``: the
DSN of a new empty database, dropped after the test. Without a PostgreSQL installation the tests
are skipped, unless ``CI=true`` (then they fail: CI must have what the tests need).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.stack import free_port

IN_CI = os.environ.get("CI", "").lower() == "true"
SYSTEM_USER = "postgres"


def _bin_dir() -> Path | None:
    """The newest installed PostgreSQL's bin directory (Debian's layout)."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0
    )
    return Path(found[-1]).parent if found else None


def _unavailable(why: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL unavailable in CI: {why}")
    pytest.skip(f"PostgreSQL unavailable here: {why}")


def _as_server_user(cmd: list[str]) -> list[str]:
    """As root, run ``cmd`` as the ``postgres`` system user (initdb and postgres refuse root)."""
    return ["runuser", "-u", SYSTEM_USER, "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(_as_server_user(cmd), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        _unavailable(f"{what} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """DSN of a PostgreSQL server of this test session (superuser ``postgres``, trust auth)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        _unavailable("no /usr/lib/postgresql/*/bin/initdb (Debian package `postgresql`)")
        return
    # not under pytest's 0700 tmp tree: the server user must be able to reach its directory
    home = Path(tempfile.mkdtemp(prefix="leitstand-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            _unavailable(f"running as root and there is no {SYSTEM_USER!r} system user to run the server as")
            return
        os.chown(home, user.pw_uid, user.pw_gid)
    data, port = home / "data", free_port()
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions"], "initdb")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    _run(
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "server.log"), "-w", "-t", "60", "start"], "pg_ctl start"
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True, timeout=60
        )
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def pg_database(postgres: str) -> Iterator[str]:
    """DSN of a new, empty database on the session's server, dropped after the test."""
    import psycopg

    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
