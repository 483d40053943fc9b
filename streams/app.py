"""The Faust app, built from settings, with every agent registered so far.

Group and rebalance timings are tuned so a worker is consuming within seconds on both brokers
(Faust's defaults made a fresh consumer group on Tansu take ~30 s to join). Processing is
at-least-once on both brokers; effects are idempotent (see streams/windowing.py).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING, Any

import faust
import structlog

from .settings import Settings
from .stores import store_url
from .topics import DEADLETTER

if TYPE_CHECKING:
    from .faust_transport import LeitstandApp

log = structlog.get_logger(__name__)


def _credentials(settings: Settings) -> Any:
    opts = settings.kafka_client_options()
    proto = settings.kafka_security_protocol
    if proto == "PLAINTEXT":
        return None
    if proto == "SSL":
        return faust.SSLCredentials(opts["ssl_context"])
    return faust.SASLCredentials(
        username=opts["sasl_plain_username"],
        password=opts["sasl_plain_password"],
        mechanism=opts["sasl_mechanism"],
        ssl_context=opts.get("ssl_context"),
    )


def create_app(settings: Settings) -> faust.App:
    from .faust_transport import LeitstandApp

    app = LeitstandApp(
        settings.group_id,
        broker=[f"kafka://{b}" for b in settings.bootstrap_list],
        broker_credentials=_credentials(settings),
        store=store_url(settings.table_store),
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        # a lone worker should join at once; a dead one be noticed in seconds
        broker_session_timeout=settings.group_session_timeout_s,
        broker_heartbeat_interval=min(1.0, settings.group_session_timeout_s / 3),
        broker_rebalance_timeout=settings.group_rebalance_timeout_s,
        # timers write tables outside stream iteration: one owner per partition, no standbys
        table_standby_replicas=0,
        # Faust would wait for every in-flight event to be acknowledged before a shutdown or a
        # rebalance; events held in a take_events() buffer never are once the flow is stopped,
        # so two agents reading one topic deadlocked a SIGTERM (measured). Unacknowledged events
        # are simply redelivered (at-least-once, idempotent effects), so do not wait.
        stream_wait_empty=False,
        producer_acks=-1,
        # alarms go out at once; the telemetry role gathers records for 10 ms (one request, not one each)
        producer_linger=settings.linger_s,
        web_enabled=True,
        web_host=settings.web_host,
        # Faust binds 0.0.0.0 unless told: listen only where the settings say (127.0.0.1 by default)
        web_bind=settings.web_host,
        web_port=settings.web_port,
        # how the other workers reach this one (the alarm API forwards to the book's holder)
        canonical_url=settings.advertised_url or own_url(settings.web_host, settings.web_port),
        # Faust's built-in /table/ and /router/ views answer anyone on the port with table
        # contents and cluster topology, past every token check: not served
        web_tables_enabled=False,
        web_router_enabled=False,
        web_in_thread=False,
    )
    app.conf.leitstand = settings
    _watch_broker(app, settings)
    _watch_recovery(app)
    deadletter = app.topic(settings.topic(DEADLETTER), key_serializer="raw", value_serializer="raw")

    _register_role(app, settings, deadletter)
    from .http import explain, probes

    probes.register(app)  # GET /ready, /metrics, /openapi.yaml: every role
    explain.register(app, settings)  # GET /explain/signals|alarms/...: every role (docs/transparency.md)
    _warn_if_exposed(app, settings)
    return app


def _register_role(app: faust.App, settings: Settings, deadletter: Any) -> None:
    """The agents and HTTP views of this worker's role (``LEITSTAND_WORKER_ROLE``)."""
    from .agents import (
        alarm_lifecycle,
        buses,
        intersection_frames,
        notifier,
        pool_monitor,
        signal_control,
        water_watchdog,
    )
    from .http import alerts as alerts_api
    from .http import signals as signals_api

    role = settings.worker_role
    if role in ("all", "water"):
        # not in telemetry: an overloaded city's frames delayed pH alarms by 21-82 s (docs/capacity.md)
        pool_monitor.register_water(app, settings, deadletter)
    if role in ("all", "telemetry"):
        intersection_frames.register(app, settings, deadletter)  # aggregation, incidents, data quality
        buses.register(app, settings, deadletter)
        if settings.probe_warning:
            from .agents import probe_warnings  # the general detector on pool probes: advice, so not in the water role

            probe_warnings.register(app, settings)
        from .agents import forecasting  # pandas and the models: only in the roles that forecast

        forecasting.register(app, settings, deadletter)
    if role in ("all", "critical"):
        pool_monitor.register_camera(app, settings, deadletter)
        if role == "critical":  # in `all` the water rules share this process: nothing to watch from outside
            water_watchdog.register(app, settings)
        books = alarm_lifecycle.register(app, settings, deadletter)
        notifier.register(app, settings)
        alerts_api.register(app, settings, books)
    if role in ("all", "control"):
        # in `all` the aggregation agent already dead-letters bad frames: report each once
        controls = signal_control.register(app, settings, deadletter, own_frame_deadletters=role == "control")
        signals_api.register(app, settings, controls)


def own_url(host: str, port: int) -> str:
    """``http://host:port`` with an IPv6 address in brackets (Faust's default leaves them out).
    A wildcard bind address names no host (another worker would call itself): the host name."""
    bare = host.strip("[]")
    if bare in ("", "0.0.0.0", "::"):
        bare = socket.gethostname()
    return f"http://[{bare}]:{port}" if ":" in bare else f"http://{bare}:{port}"


def exposure_warning(settings: Settings) -> str | None:
    """The start-up warning for an HTTP side bound beyond loopback, or None on loopback.

    Binding elsewhere is allowed (a TLS reverse proxy on another host needs it), never silent:
    the worker speaks plain HTTP, so bearer tokens and alarm data cross the network in clear
    text, and ``/metrics``, ``/ready`` and ``/openapi.yaml`` answer anyone who reaches the port.
    """
    host = settings.web_host.strip("[]")
    if host.lower() == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: assume it is reachable from elsewhere
    tokens = (
        "" if settings.api_token or settings.api_read_token else ("; no API token is set, so every /alerts and /signals call is refused")
    )
    return (
        f"the HTTP API listens on {settings.web_host}:{settings.web_port}, not loopback: plain HTTP, so "
        "bearer tokens and alarm data cross the network in clear text and /metrics and /ready answer "
        f"anyone; put a TLS reverse proxy in front and filter the port (docs/security.md){tokens}"
    )


def _warn_if_exposed(app: faust.App, settings: Settings) -> None:
    warning = exposure_warning(settings)
    if warning is None:
        return

    @app.task
    async def warn_http_exposed() -> None:  # a task: logged once logging is configured
        log.warning(warning)


def _watch_recovery(app: faust.App) -> None:
    """Restart a table recovery that receives nothing (streams/recovery_watch.py)."""
    from .recovery_watch import RecoveryWatch

    watch = RecoveryWatch(app)

    @app.task
    async def watch_table_recovery() -> None:
        await watch.run()


def _watch_broker(app: LeitstandApp, settings: Settings) -> None:
    """Observe the consumer's broker link and stop the worker if the broker lost its state."""
    from .faust_transport import BrokerLink, BrokerWatch, stop_on_lost_broker_state
    from .topics import CATALOGUE

    # our own attribute, declared on LeitstandApp (faust_transport's /ready reads it)
    app.broker_link = BrokerLink(timeout_s=settings.group_session_timeout_s / 2)
    catalogue = [settings.topic(t.name) for t in CATALOGUE]
    watch = BrokerWatch(lambda: [*catalogue, *app.tables.changelog_topics])

    @app.task
    async def watch_broker_state() -> None:
        await watch.run(settings.kafka_client_options(), settings.bootstrap_list, stop_on_lost_broker_state(app))
