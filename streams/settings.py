"""Effective configuration: defaults < ``.env`` < ``LEITSTAND_*`` environment < CLI flags.

One settings object is built per process and passed down explicitly, so tests and the
CLI can run several differently configured workers side by side.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from .errors import CliError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
TimestampReference = Literal["now", "stream"]
WorkerRole = Literal["all", "critical", "water", "telemetry", "control"]

MIN_API_TOKEN_BYTES = 32
#: producer linger of the telemetry role: records gathered for 10 ms go out as one request
BULK_LINGER_MS = 10
#: niceness of the roles whose backlog may wait (frames, buses, forecasts, signal plans): under
#: CPU contention the kernel then serves the critical and water roles first (docs/capacity.md)
BULK_NICE = 5
#: days the audit log is kept at least (EU AI Act Art. 19(1): logs of high-risk systems, six months)
MIN_AUDIT_LOG_DAYS = 183
# RFC 6750 b64token: what a bearer token may contain, so it survives HTTP headers unchanged
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


class SettingsInvalid(CliError):
    """A setting that cannot be used; the message names the variable, one line, no traceback."""


class PoolSettings(BaseModel):
    """How one pool is judged (detection.water_rules.limits_for and capacity)."""

    basin_type: str = "swimmer"
    capacity: int | None = Field(None, ge=1)
    bands: dict[str, dict[str, float | None]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _limits_exist(self) -> PoolSettings:
        from detection.water_rules import limits_for

        limits_for(self.basin_type, self.bands)  # ValueError names the typo
        return self


#: the longest any history is kept: 100 years. ``db prune`` computes now - days as a date, and a
#: million days crashed it after it had already pruned another table (a probe of stop 55)
MAX_RETENTION_DAYS = 36_500


class Settings(BaseSettings):
    """Every knob an operator may turn, with the default a newcomer needs."""

    model_config = SettingsConfigDict(
        env_prefix="LEITSTAND_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        hide_input_in_errors=True,  # an error must not echo a token or a URL with credentials
        # no setting means "never" by infinity: LEITSTAND_ALARM_ACK_TIMEOUT_CRITICAL_S=inf was
        # accepted and critical alarms never escalated (a probe of stop 55)
        allow_inf_nan=False,
    )

    # --- Kafka --------------------------------------------------------------------
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Comma-separated host:port list; the embedded broker listens here by default.",
    )
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    topic_prefix: str = Field("leitstand.", description="Prepended to every topic name.")
    topic_partitions: int = Field(4, ge=1, le=1024)
    topic_replication_factor: int = Field(1, ge=1, le=16)

    # --- Faust runtime ------------------------------------------------------------
    app_id: str = Field("leitstand", description="Faust app id = consumer group id.")
    table_store: str = Field("memory://", description="memory:// (default) or rocksdb:// for durable local state.")
    data_dir: Path = Field(Path(".leitstand/worker"), description="Faust tables and app data.")
    group_session_timeout_s: float = Field(
        6.0,
        ge=1.0,
        le=300.0,
        description="A worker silent this long is dropped from the group. Also bounds start-up "
        "on Tansu, which holds a new group's join for about half of it; 6 s is the smallest "
        "value a stock Apache Kafka accepts (group.min.session.timeout.ms).",
    )
    group_rebalance_timeout_s: float = Field(10.0, ge=1.0, le=300.0, description="How long a rebalance waits for members to rejoin.")
    worker_role: WorkerRole = Field(
        "all",
        description="all: every agent in one process. critical: camera events, alarm books, "
        "notifier and the alerts API; water: pool water readings against DIN 19643 limits and "
        "silent pool sensors; telemetry: detector frames, buses, data quality and forecasts; "
        "control: the signal control agent and the signals API. Run the roles as separate "
        "processes so bulk telemetry can never delay a life-safety alarm, a water alarm or a "
        "signal plan.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="The worker's event loop: uvloop (libuv, the default) or the standard library's "
        "asyncio. uvloop gave a telemetry worker 5-15 % more frames per CPU second (docs/capacity.md); "
        "asyncio is the fallback should a library misbehave on uvloop.",
    )
    worker_nice: int | None = Field(
        None,
        ge=0,
        le=19,
        description="Niceness the worker process takes at start; unset: 5 for the telemetry and "
        "control roles, 0 for the others, so an overloaded machine delays frames and plans, not "
        "a drowning alarm or a water-limit alarm (a process can only raise its own niceness).",
    )
    producer_linger_ms: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="How long a worker's producer gathers records into one request; unset: 10 for "
        "the telemetry role, where one request per record cost a quarter of the process (bench "
        "pipeline), 0 for the others (alarms and signal plans go out at once).",
    )
    consumer_fetch_max_wait_ms: int = Field(
        100,
        ge=1,
        le=1500,
        description="Longest a worker's fetch waits for data; bounds per-hop latency on brokers "
        "that do not answer a waiting fetch early (Tansu).",
    )
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    advertised_url: str | None = Field(
        None,
        description="How the other workers reach this worker's HTTP side (http://host:port); unset: "
        "http://WEB_HOST:WEB_PORT. Set it when workers run on several hosts: the alarm API forwards "
        "a request to the worker holding the alarm's book by this URL.",
    )
    api_token: SecretStr | None = Field(
        None,
        description=f"Bearer token for changing HTTP calls, at least {MIN_API_TOKEN_BYTES} bytes "
        "(python -c 'import secrets; print(secrets.token_urlsafe(32))'); unset: changes are refused.",
    )
    api_read_token: SecretStr | None = Field(
        None,
        description=f"Read-only bearer token (GET /alerts, GET /signals/plans), at least {MIN_API_TOKEN_BYTES} "
        "bytes: for a wall display that must not resolve alarms. The API token reads too.",
    )

    # --- records and windows ------------------------------------------------------
    max_record_bytes: int = Field(1_000_000, ge=256, description="Larger records go to the dead-letter topic.")
    clock_skew_s: float = Field(6 * 3600.0, gt=0, description="Accepted distance of an event time from the reference.")
    clock_ahead_s: float = Field(
        300.0,
        gt=0,
        description="With reference 'now': how far an event time may lie in the future "
        "(a device clock running ahead would otherwise blind its intersection's windows for hours).",
    )
    timestamp_reference: TimestampReference = Field(
        "now",
        description="'now' checks event times against the wall clock; 'stream' against "
        "the newest event time seen on the topic (for replays of historical data).",
    )
    aggregate_window_s: int = Field(60, ge=1, le=3600)
    aggregate_lateness_s: float = Field(10.0, ge=0, description="How long a window waits for late frames (event time).")
    aggregate_idle_close_s: float = Field(90.0, gt=0, description="Close open windows of an intersection silent this long (wall).")
    batch_max: int = Field(1000, ge=1, description="Largest batch handed to an agent.")
    batch_within_s: float = Field(0.5, gt=0, description="Longest wait to fill a batch.")

    # --- pools and alarms -----------------------------------------------------------
    pools: dict[str, PoolSettings] = Field(
        default_factory=dict,
        description="Per pool: basin type, capacity, band overrides, e.g. "
        '{"P1": {"basin_type": "whirlpool", "capacity": 20, "bands": {"ph": {"high": 7.4}}}}.',
    )
    pool_basin_default: str = Field("swimmer", description="Basin type of pools not listed in 'pools'.")
    water_min_duration_s: float = Field(30.0, ge=0, description="A water value must stay out of (or back in) range this long (event time).")
    sensor_heartbeat_s: float = Field(300.0, gt=0, description="A pool silent this long (wall clock) raises a sensor-fault alarm.")
    probe_warning: bool = Field(
        True, description="Early warning (telemetry role): a minor alarm when a pool's chlorine, pH or redox course turns unusual."
    )
    probe_warning_threshold: float = Field(
        0.8, gt=0, le=1, description="Score of the general detector from which a probe's course counts as unusual (docs/alarms.md)."
    )
    probe_warning_warmup_s: float = Field(
        2 * 86400.0, ge=0, description="No early warning this long after a pool's first reading: the detector learns its day first."
    )
    water_watch_after_s: float = Field(
        60.0,
        ge=0,
        description="The critical worker raises a system alarm (evaluation_behind of water-rules) when pool readings have waited this long "
        "unread by the water worker (none running, or stuck or overloaded); 0 turns the watch off, else at least 5 s.",
    )
    alarm_ack_timeout_critical_s: float = Field(30.0, gt=0, description="Escalate critical alarms unacknowledged this long.")
    alarm_ack_timeout_major_s: float = Field(600.0, gt=0, description="Escalate major alarms unacknowledged this long.")
    alarm_ack_timeout_minor_s: float = Field(3600.0, gt=0, description="Escalate minor alarms unacknowledged this long.")
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts webhooks may reach although they are not public https receivers "
        "(http:// and private or loopback addresses allowed), comma-separated: 127.0.0.1,pager.internal. "
        "Link-local and cloud-metadata addresses are refused even here.",
    )
    alarm_contact_levels: list[list[str]] = Field(
        default_factory=list,
        description='Webhook URLs per contact level, first = person on duty: [["https://..."], ["https://..."]]; '
        "https only, except hosts in webhook_allowed_hosts.",
    )
    webhook_secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key of the webhook-signature header (Standard Webhooks; "
        "a whsec_<base64> secret is base64-decoded, any other string used as is).",
    )
    webhook_timeout_s: float = Field(5.0, gt=0, le=120)
    webhook_max_attempts: int = Field(10, ge=1, le=100, description="Attempts per delivery before it is logged as failed.")
    webhook_backoff_s: float = Field(1.0, gt=0, description="First retry delay; doubles per attempt (capped at 5 min).")

    # --- delivery ---
    # e-mail and MQTT beside the webhooks, contacts per subject (streams/delivery/, docs/delivery.md);
    # every channel retries with webhook_max_attempts / webhook_backoff_s
    smtp_host: str | None = Field(None, description="SMTP server of alarm e-mails (submission, STARTTLS required).")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_tls: Literal["starttls", "tls"] = Field("starttls", description="starttls (port 587) or tls (implicit, port 465); never plain.")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = Field(None, description="Sender address of alarm e-mails, e.g. leitstand@stadt.example.")
    smtp_ca_file: Path | None = Field(None, description="CA file the SMTP server's certificate is checked against (default: system CAs).")
    smtp_timeout_s: float = Field(10.0, gt=0, le=120)
    mqtt_host: str | None = Field(None, description="MQTT broker of on-site displays and sirens.")
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = Field(False, description="TLS to the MQTT broker (port 8883 usually), certificate verified.")
    mqtt_ca_file: Path | None = Field(None, description="CA file the MQTT broker's certificate is checked against (default: system CAs).")
    mqtt_qos: Literal[1, 2] = Field(1, description="QoS of alarm messages: 1 (at least once) or 2.")
    mqtt_timeout_s: float = Field(10.0, gt=0, le=120)
    alarm_subject_contacts: dict[str, list[list[str]]] = Field(
        default_factory=dict,
        description='Contact levels per subject (pool, intersection); "*" for subjects not listed, which otherwise use '
        'alarm_contact_levels: {"P1": [["mailto:aufsicht@bad-sued.example", "mqtt:bad-sued/halle/sirene"], '
        '["https://pager.example/hook"]]}. A contact is https://... (webhook), mailto:<address> or mqtt:<topic>.',
    )

    @field_validator("smtp_from")
    @classmethod
    def _sender_is_an_address(cls, value: str | None) -> str | None:
        from .delivery.contacts import email_address_problem

        problem = None if value is None else email_address_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("alarm_subject_contacts")
    @classmethod
    def _subject_contacts_usable(cls, value: dict[str, list[list[str]]], info: ValidationInfo) -> dict[str, list[list[str]]]:
        """Every contact parses, and the server its channel needs is configured."""
        from .delivery.contacts import check_subject_contacts

        d = info.data
        smtp_ready, mqtt_ready = bool(d.get("smtp_host") and d.get("smtp_from")), bool(d.get("mqtt_host"))
        problem = check_subject_contacts(value, d.get("webhook_allowed_hosts") or (), smtp_ready=smtp_ready, mqtt_ready=mqtt_ready)
        if problem:
            raise ValueError(problem)
        return value

    # --- forecasting ----------------------------------------------------------------
    forecast_model: str | None = Field(None, description="Forecaster name (None: the project's default, see docs/forecasting.md).")
    forecast_horizon_h: int = Field(24, ge=1, le=24 * 14, description="Hours ahead each refresh forecasts.")
    forecast_refresh_s: float = Field(
        900.0, gt=0, description="Refit every series this often (wall clock); announced events refit at once."
    )
    forecast_min_history_h: int = Field(48, ge=24, description="Hours of history a series needs before it is forecast.")
    forecast_history_days: int = Field(42, ge=2, le=400, description="Days of hourly history kept per series.")
    forecast_workers: int = Field(2, ge=1, le=64, description="Processes fitting models (the event loop never blocks on a fit).")
    forecast_nice: int = Field(
        10, ge=0, le=19, description="Niceness added to the model-fitting processes: refits yield the CPU to alarm processing."
    )
    forecast_holidays: str | None = Field(
        "DE-BY", description="Public holidays as regressors: country[-subdivision] for the holidays package."
    )
    forecast_timezone: str | None = Field(
        "Europe/Berlin",
        description="The city's clock (IANA zone) for forecasts: hour of day, weekday, holidays and the same local time "
        "a day or week back across daylight-saving changes; empty for UTC.",
    )

    @field_validator("forecast_timezone")
    @classmethod
    def _zone_exists(cls, value: str | None) -> str | None:
        """A typo would otherwise surface as a failed refit per series, deep in the worker."""
        if value is None or not value.strip():
            return None
        from zoneinfo import ZoneInfo

        try:
            ZoneInfo(value.strip())
        except Exception:  # ZoneInfoNotFoundError (a KeyError), ValueError, IsADirectoryError ("Europe")
            raise ValueError(f"unknown time zone {value!r}: an IANA name such as Europe/Berlin, or empty for UTC") from None
        return value.strip()

    venues: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Which series an event at a venue affects: {"stadium": ["intersection/K12", "pool/hallenbad-1"]}.',
    )

    # --- console ---
    # the operator console (`leitstand console`, streams/console/, docs/operators.md)
    console_host: str = Field("127.0.0.1", description="Address the console listens on.")
    console_port: int = Field(6080, ge=1, le=65535, description="Port of the operator console.")
    console_users_db: Path | None = Field(
        None, description="SQLite file of accounts, sessions and tokens (default: <state_dir>/console.sqlite)."
    )
    console_session_idle_s: float = Field(1800.0, gt=0, le=86_400, description="A console session unused this long expires.")
    console_session_max_s: float = Field(12 * 3600.0, gt=0, le=7 * 86_400, description="A console session expires this long after login.")
    console_login_max_failures: int = Field(5, ge=1, le=100, description="Wrong passwords in a row that lock an account.")
    console_login_lockout_s: float = Field(900.0, gt=0, le=86_400, description="How long a locked account stays locked.")
    console_secure_cookie: bool = Field(False, description="Mark the session cookie Secure (set it when the console is served over https).")
    console_login_address_max_failures: int = Field(
        20, ge=1, le=10_000, description="Failed logins one client address may make in a burst, whichever accounts it names."
    )
    console_login_address_window_s: float = Field(
        600.0, gt=0, le=86_400, description="A client address regains the full burst of failed logins after this long."
    )

    # --- transparency ---
    # the algorithm register, explanations and the data-quality watch (docs/transparency.md)
    transparency_organisation: str = Field("Municipality (set LEITSTAND_TRANSPARENCY_ORGANISATION)", description="Who runs the system.")
    transparency_responsible_role: str = Field("Head of the traffic control room", description="Role accountable for the algorithms.")
    transparency_contact: str = Field("not set (LEITSTAND_TRANSPARENCY_CONTACT)", description="Where citizens and auditors turn.")
    dq_expected_interval_s: float = Field(60.0, gt=0, le=86_400, description="A sensor stream silent this many intervals x 3 is missing.")
    dq_stuck_after: int = Field(30, ge=3, le=100_000, description="Identical readings in a row after which a stream is stuck.")
    dq_skew_limit_s: float = Field(120.0, gt=0, le=86_400, description="Event time this far from arrival (either way) is clock skew.")

    # --- buses ---
    # the bus agent (streams/agents/buses.py, transit/): adherence, headway alarms, priority requests
    bus_on_time_early_s: float = Field(-60.0, ge=-3600.0, le=0.0, description="Earliest delay still on time (-1 min, German convention).")
    bus_on_time_late_s: float = Field(180.0, ge=0.0, le=3600.0, description="Latest delay still on time (+3 min).")
    bus_bunched_below: float = Field(0.5, gt=0.0, lt=1.0, description="A headway below this share of the scheduled one is bunching.")
    bus_gap_above: float = Field(1.5, gt=1.0, le=10.0, description="A headway above this share of the scheduled one is a gap.")
    bus_stale_s: float = Field(300.0, gt=0.0, le=86_400.0, description="A position older than this behind the newest one is stale.")
    bus_schedule_refresh_s: float = Field(60.0, gt=0.0, le=86_400.0, description="Re-read transit.schedule this often (a new feed).")
    bus_priority_late_s: float = Field(120.0, ge=0.0, le=3600.0, description="A bus later than this asks the signals for priority.")
    bus_priority_stops: dict[str, tuple[str, str]] = Field(
        default_factory=dict,
        description='Stop -> [intersection, stage] a bus heading to it crosses first: {"L1-S04": ["K12", "A"]} (priority requests).',
    )

    # --- broker outage ---
    producer_outage_s: float = Field(
        180.0,
        ge=5.0,
        le=3600.0,
        description="How long the command-line producers (produce, replay, simulate) keep retrying a record while the "
        "broker is away before they report it as refused; a broker restart takes seconds to a minute.",
    )

    # --- storage and local state --------------------------------------------------
    postgres_dsn: SecretStr | None = Field(None, description="postgresql://user:password@host:5432/db or libpq key=value (history).")
    # history in PostgreSQL (docs/database.md): the sink's batches and `leitstand db prune`'s ages
    sink_batch_max: int = Field(5000, ge=1, le=100_000, description="Most records the history sink writes in one transaction.")
    sink_batch_within_s: float = Field(1.0, gt=0, le=60, description="Longest the history sink waits to fill a batch.")
    retention_aggregates_days: int = Field(30, ge=1, le=MAX_RETENTION_DAYS, description="Days of 1-minute aggregates kept.")
    retention_pool_readings_days: int = Field(90, ge=1, le=MAX_RETENTION_DAYS, description="Days of pool readings kept.")
    retention_forecasts_days: int = Field(90, ge=1, le=MAX_RETENTION_DAYS, description="Days of forecasts kept (by publication time).")
    retention_bus_passages_days: int = Field(183, ge=1, le=MAX_RETENTION_DAYS, description="Days of bus stop passages kept.")
    retention_signal_decisions_days: int = Field(183, ge=1, le=MAX_RETENTION_DAYS, description="Days of signal plans and decisions kept.")
    retention_alarm_transitions_days: int = Field(365, ge=1, le=MAX_RETENTION_DAYS, description="Days of alarm transitions kept.")
    retention_scheduled_events_days: int = Field(
        730, ge=1, le=MAX_RETENTION_DAYS, description="Days events and holidays are kept after they ended (year-on-year planning)."
    )
    retention_audit_log_days: int = Field(
        MIN_AUDIT_LOG_DAYS, description=f"Days of the audit log kept; at least {MIN_AUDIT_LOG_DAYS} (six months, EU AI Act Art. 12/19)."
    )
    state_dir: Path = Field(Path(".leitstand"), description="Broker pid/log files and data live here.")
    cache_dir: Path = Field(Path(".leitstand/cache"), description="Downloaded Apache Kafka jars are cached here.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _tls_file_readable(cls, value: Path | None) -> Path | None:
        """A TLS file that is not there fails every Kafka command later with a stack trace."""
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("retention_audit_log_days")
    @classmethod
    def _audit_log_kept_six_months(cls, value: int) -> int:
        """Logs of a high-risk AI system are kept at least six months (EU AI Act Art. 19(1))."""
        if value > MAX_RETENTION_DAYS:
            raise ValueError(f"is {value}; at most {MAX_RETENTION_DAYS} days (100 years)")
        if value < MIN_AUDIT_LOG_DAYS:
            raise ValueError(f"is {value}; the audit log is kept at least {MIN_AUDIT_LOG_DAYS} days (six months, EU AI Act Art. 12/19)")
        return value

    @field_validator("water_watch_after_s")
    @classmethod
    def _water_watch_above_the_commit_interval(cls, value: float) -> float:
        """A group commits its position every ~3 s (Faust): a shorter threshold alarms on a healthy worker."""
        if 0 < value < 5:
            raise ValueError(f"is {value:g}; use 0 (no watch) or at least 5 s: a healthy water worker commits only every ~3 s")
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix_is_a_topic_name(cls, value: str) -> str:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if not set(value) <= allowed:
            raise ValueError("may contain only letters, digits, '.', '_' and '-'")
        return value

    @field_validator("advertised_url")
    @classmethod
    def _advertised_url_is_http(cls, value: str | None) -> str | None:
        """Other workers send bearer tokens to this URL: it must be a plain http(s) origin."""
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        port_ok = parts.port is None or 0 < parts.port  # .port raises ValueError beyond 65535 or not a number
        plain = not parts.query and not parts.fragment and "@" not in parts.netloc  # no user or password: it is shown unmasked
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or not plain or not port_ok:
            raise ValueError("must be http://HOST:PORT or https://HOST:PORT (no path, no user or password), e.g. http://10.0.0.5:6066")
        return value.rstrip("/")

    @field_validator("api_token", "api_read_token")
    @classmethod
    def _token_is_strong(cls, value: SecretStr | None) -> SecretStr | None:
        """A short or empty token would make the write API guessable (or open): refuse to start."""
        if value is None:
            return None
        token = value.get_secret_value()
        if not token:
            raise ValueError(
                f"is empty; unset the variable to refuse changes, or set a random token of at least {MIN_API_TOKEN_BYTES} bytes"
            )
        if len(token.encode()) < MIN_API_TOKEN_BYTES:
            raise ValueError(
                f"is {len(token.encode())} bytes; use at least {MIN_API_TOKEN_BYTES} random bytes, "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if not _BEARER_TOKEN.fullmatch(token):
            raise ValueError("may contain only letters, digits and -._~+/ (and trailing =), as a bearer token")
        return value

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _hosts_from_list_or_csv(cls, value: Any) -> Any:
        """Comma-separated in the environment (a JSON list is read too)."""
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                import json

                return json.loads(value)
            return [h.strip() for h in value.split(",") if h.strip()]
        return value

    @field_validator("alarm_contact_levels")
    @classmethod
    def _webhook_targets_are_safe(cls, value: list[list[str]], info: ValidationInfo) -> list[list[str]]:
        """https only (plus explicitly allowed hosts), no internal or metadata addresses."""
        from .webhooks import TargetRefused, check_url

        allowed = info.data.get("webhook_allowed_hosts") or ()
        for url in (u for level in value for u in level):
            try:
                check_url(url, allowed)
            except TargetRefused as exc:
                raise ValueError(f"webhook {exc}") from None
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_is_usable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        from .webhooks import secret_key

        if not secret_key(value.get_secret_value()):  # ValueError for a bad whsec_ secret
            raise ValueError("is empty; unset it to send unsigned webhooks, or set a long random string")
        return value

    @field_validator("table_store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if not value.startswith(("memory://", "rocksdb://")):
            raise ValueError("must start with memory:// or rocksdb://")
        return value

    @property
    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.kafka_bootstrap_servers.split(",") if s.strip()]

    @property
    def niceness(self) -> int:
        """The niceness this worker runs at (``worker_nice`` or its role's default)."""
        if self.worker_nice is not None:
            return self.worker_nice
        return BULK_NICE if self.worker_role in ("telemetry", "control") else 0

    @property
    def linger_s(self) -> float:
        """The producer linger of this worker (``producer_linger_ms`` or its role's default)."""
        if self.producer_linger_ms is not None:
            return self.producer_linger_ms / 1000.0
        return BULK_LINGER_MS / 1000.0 if self.worker_role == "telemetry" else 0.0

    @property
    def group_id(self) -> str:
        """Faust app id (consumer group, changelog prefix) of this worker's role."""
        return self.app_id if self.worker_role == "all" else f"{self.app_id}-{self.worker_role}"

    def topic(self, name: str) -> str:
        """Full topic name for a catalogue name such as ``sensors.intersection``."""
        return f"{self.topic_prefix}{name}"

    def kafka_client_options(self) -> dict[str, Any]:
        """Security options in the vocabulary of aiokafka clients (SASL/TLS pass-through)."""
        opts: dict[str, Any] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            import ssl

            try:
                ctx = ssl.create_default_context(cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None)
                if self.kafka_ssl_certfile:
                    ctx.load_cert_chain(
                        str(self.kafka_ssl_certfile),
                        str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None,
                    )
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: not PEM, key does not match
                files = "LEITSTAND_KAFKA_SSL_CAFILE / _CERTFILE / _KEYFILE"
                raise SettingsInvalid(f"the Kafka TLS files ({files}) cannot be used: {exc}") from None
            opts["ssl_context"] = ctx
        if self.kafka_security_protocol.startswith("SASL"):
            opts["sasl_mechanism"] = self.kafka_sasl_mechanism or "PLAIN"
            opts["sasl_plain_username"] = self.kafka_sasl_username
            opts["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        return opts

    def masked(self) -> dict[str, Any]:
        """Effective settings for display, secrets replaced by ``***``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown: Any = _mask_dsn(value.get_secret_value()) if name.endswith("dsn") else "***"
            elif name == "alarm_contact_levels":
                shown = [[mask_url(url) for url in level] for level in value]
            elif name == "alarm_subject_contacts":  # webhook URLs may carry credentials (delivery)
                shown = {s: [[mask_url(c) if c.lower().startswith("http") else c for c in lv] for lv in lvs] for s, lvs in value.items()}
            elif isinstance(value, Path):
                shown = str(value)
            else:
                shown = value
            out[name] = shown
        return out


# keys whose values are secrets, in a libpq conninfo string or a URL query
_SECRET_KEYS = re.compile(r"pass|pwd|secret|token|key|auth|sig|credential|session|code", re.IGNORECASE)
# libpq conninfo: key = value, the value single-quoted (backslash escapes) or bare
_CONNINFO_PAIR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)\s*")


def _mask_dsn(dsn: str) -> str:
    """Keep host and database visible (useful when debugging), hide the password.

    Both DSN forms: ``postgresql://user:pw@host/db?sslpassword=...`` and libpq's
    ``host=db user=pg password=X``. Anything not understood is shown as ``***``.
    """
    if "://" in dsn:
        return mask_url(dsn, mask_all_query=False)
    pairs, pos = [], 0
    while pos < len(dsn):
        m = _CONNINFO_PAIR.match(dsn, pos)
        if m is None or m.end() == pos:
            return "***"
        key, value = m.group(1), m.group(2)
        pairs.append(f"{key}={'***' if _SECRET_KEYS.search(key) else value}")
        pos = m.end()
    return " ".join(pairs) if pairs else "***"


def mask_url(url: str, mask_all_query: bool = True) -> str:
    """A URL for display: userinfo password (webhooks: the whole userinfo) and query values
    hidden; of a webhook's path only the segments that look like credentials (long, with digits
    or capitals) are hidden, so an operator can still tell receivers apart."""
    from urllib.parse import urlsplit, urlunsplit

    url = _hide_split_password(url)
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        if mask_all_query:
            netloc = f"***@{hostport}"
        elif password is not None:
            netloc = f"{userinfo.partition(':')[0]}:***@{hostport}"
    query = "&".join(_mask_query_item(item, mask_all_query) for item in parts.query.split("&")) if parts.query else ""
    path = "/".join("***" if _looks_like_a_credential(seg) else seg for seg in parts.path.split("/")) if mask_all_query else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path, query=query, fragment=""))


def _hide_split_password(url: str) -> str:
    """``url`` with a password that holds ``/``, ``?`` or ``#`` replaced by ``***``.

    libpq reads the userinfo of ``postgresql://ops:ab?cd@db/x`` up to the ``@`` (password
    ``ab?cd``); ``urlsplit`` ends the authority at the ``?`` and would show ``ops:ab`` as a host.
    So when the authority has no ``@`` but ``user:`` is followed by something other than a port
    and an ``@`` comes later, everything up to the last ``@`` is taken as the userinfo (hiding
    too much is the safe mistake)."""
    scheme, sep, rest = url.partition("://")
    head = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if not sep or "@" in head or "@" not in rest or head.startswith("["):
        return url
    user, colon, after = head.partition(":")
    if not colon or after.isdigit():  # host:port: no password here
        return url
    return f"{scheme}://{user}:***@{rest.rpartition('@')[2]}"


def _looks_like_a_credential(segment: str) -> bool:
    """A webhook path segment that is a token rather than a word: Slack, Discord and Teams put
    their only credential in the path (``/services/T.../B.../<24 random characters>``)."""
    if len(segment) >= 32:
        return True
    return len(segment) >= 16 and any(c.isdigit() or c.isupper() or c in "_=+%~" for c in segment)


def _mask_query_item(item: str, mask_all: bool) -> str:
    key, eq, _value = item.partition("=")
    if not eq:
        return item
    return f"{key}=***" if mask_all or _SECRET_KEYS.search(key) else item


def _one_line(exc: SettingsError | ValidationError) -> str:
    """The first problem, naming the environment variable, without the offending value."""
    if isinstance(exc, SettingsError):
        m = re.search(r'field "([^"]+)" from source "([^"]+)"', str(exc))
        if m is None:
            return f"invalid settings: {exc}"
        name, source = m.groups()
        where = " in .env" if "DotEnv" in source else ""
        cause = exc.__cause__
        why = f"not valid JSON ({cause})" if cause is not None else "cannot be read"
        return f"invalid setting {name} (LEITSTAND_{name.upper()}{where}): {why}"
    errors = exc.errors()
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ())]
    name = loc[0] if loc else "settings"
    inner = f" at {'.'.join(loc[1:])}" if len(loc) > 1 else ""
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid setting {name} (LEITSTAND_{name.upper()}){inner}: {msg}{more}"


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment with CLI overrides (``None`` means 'not given').

    Every command loads its settings here, so a bad variable ends every command the same way:
    ``SettingsInvalid`` with one line naming the variable (the CLI prints it, exit 1).
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except (SettingsError, ValidationError) as exc:
        raise SettingsInvalid(_one_line(exc)) from None
    except UnicodeDecodeError:  # every command, even ``config``, ended in a stack trace
        raise SettingsInvalid(f"{Path('.env').resolve()} is not UTF-8 text; save it as UTF-8 (or remove it)") from None
    except OSError as exc:
        raise SettingsInvalid(f".env cannot be read: {exc.strerror or exc}") from None
