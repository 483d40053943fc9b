"""The Grafana dashboards of ``dashboards/`` as data: load them, list every panel's queries, expand
Grafana's macros the way Grafana does, export them with their provisioning, push them.

Grafana's server cannot run on the build machines, so the tests do what Grafana would: they take
each panel's query, expand the PostgreSQL datasource's macros (``$__timeFilter`` ...) and the
dashboard's variables for a time range, and run it against the real database; PromQL goes to a
real Prometheus with ``$__rate_interval`` and friends replaced. What a panel *reads* from the
answer is taken from the panel itself (the ``time`` column of a time-series query, the columns its
``organize`` transformation and field overrides name, the labels in its legend), so a query
that returns the wrong columns fails as surely as one that returns nothing.

The macro expansion follows Grafana's PostgreSQL datasource (pkg/tsdb/grafana-postgresql-datasource
macros and the SQL engine's ``$__interval`` handling) and the frontend's interpolation of
single-value variables (single quotes doubled, no quotes added: the query writes ``'$var'``).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from .settings import mask_url

#: the checkout's dashboards/ (JSON in json/, provisioning/, prometheus.yml)
DEFAULT_SOURCE = Path(__file__).resolve().parents[1] / "dashboards"
#: the Grafana folder the dashboards go to, by ``push`` as by provisioning
FOLDER_UID = "leitstand"
FOLDER_TITLE = "Leitstand"


class DashboardError(ValueError):
    """A dashboard file or query that cannot be used; the message is one line for the CLI."""


@dataclass(frozen=True)
class Dashboard:
    """One dashboard file: its name (the file stem) and the JSON model Grafana stores."""

    name: str
    model: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.model["uid"])

    @property
    def title(self) -> str:
        return str(self.model["title"])


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel (or of an annotation), with what the panel reads from its answer.

    ``reads`` are SQL column names (``kind == "sql"``) or Prometheus label names (``"promql"``)
    this query's answer must have; ``panel_reads`` the names the panel's transformations and
    overrides use, which the answers of all its queries together must have.
    """

    dashboard: str
    panel_id: int
    panel_title: str
    ref_id: str
    kind: Literal["sql", "promql"]
    text: str
    fmt: str = "table"
    reads: tuple[str, ...] = ()
    panel_reads: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"{self.dashboard} / {self.panel_title!r} ({self.ref_id})"


def load(source: Path = DEFAULT_SOURCE) -> list[Dashboard]:
    """Every ``*.json`` of ``source/json`` (or of ``source`` itself), sorted by name."""
    folder = source / "json" if (source / "json").is_dir() else source
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DashboardError(f"no dashboard JSON in {folder}")
    out = []
    for path in files:
        try:
            model = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DashboardError(f"{path}: not a readable JSON dashboard ({exc})") from None
        if not isinstance(model, dict) or not model.get("uid") or not model.get("title"):
            raise DashboardError(f"{path}: a dashboard needs a uid and a title")
        out.append(Dashboard(path.stem, model))
    return out


def panels(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too (rows themselves are not panels)."""
    out: list[dict[str, Any]] = []
    for p in model.get("panels", []):
        if p.get("type") == "row":
            out.extend(p.get("panels", []))
        else:
            out.append(p)
    return out


def _legend_labels(legend: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend)))


def _columns_read(panel: Mapping[str, Any], fmt: str) -> tuple[str, ...]:
    """Columns the panel names: ``time`` for time series, renamed and overridden fields."""
    names: list[str] = ["time"] if fmt == "time_series" else []
    for t in panel.get("transformations", []):
        if t.get("id") == "organize":
            names.extend(t.get("options", {}).get("renameByName", {}))
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        matcher = o.get("matcher", {})
        if matcher.get("id") == "byName":
            names.append(str(matcher.get("options")))
    return tuple(dict.fromkeys(names))


def _target_query(dashboard: str, panel: Mapping[str, Any], target: Mapping[str, Any]) -> PanelQuery:
    pid, title, ref = int(panel.get("id", 0)), str(panel.get("title", "")), str(target.get("refId", ""))
    if "rawSql" in target:
        fmt = str(target.get("format", "table"))
        reads = ("time",) if fmt == "time_series" else ()
        return PanelQuery(dashboard, pid, title, ref, "sql", str(target["rawSql"]), fmt, reads, _columns_read(panel, fmt))
    if "expr" in target:
        labels = _legend_labels(str(target.get("legendFormat", "")))
        return PanelQuery(dashboard, pid, title, ref, "promql", str(target["expr"]), "time_series", labels)
    raise DashboardError(f"{dashboard} / {title!r} ({ref}): a target with neither rawSql nor expr")


def queries(dashboard: Dashboard) -> list[PanelQuery]:
    """Every query of every panel and every SQL annotation of ``dashboard``."""
    out = [_target_query(dashboard.name, p, t) for p in panels(dashboard.model) for t in p.get("targets", [])]
    for anno in dashboard.model.get("annotations", {}).get("list", []):
        target = anno.get("target") or {}
        if "rawSql" in target:  # Grafana's SQL annotations read time, text and optionally tags
            title, ref = f"annotation {anno.get('name')}", str(target.get("refId", "Anno"))
            out.append(PanelQuery(dashboard.name, 0, title, ref, "sql", str(target["rawSql"]), "table", ("time", "text")))
    return out


def variable_queries(dashboard: Dashboard) -> dict[str, str]:
    """SQL of the dashboard's query variables, by variable name."""
    return {v["name"]: str(v["query"]) for v in dashboard.model.get("templating", {}).get("list", []) if v.get("type") == "query"}


# ------------------------------------------------------------------------------------ time


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range; Grafana works in milliseconds, so do we."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise DashboardError("a time range needs timezone-aware datetimes")
        if self.end <= self.start:
            raise DashboardError("a time range must end after it starts")


_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}

#: rangeutil.roundInterval of Grafana's frontend: (below this many ms, use that many ms)
_ROUNDING_MS = [
    (10, 1), (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1_500, 1_000),
    (3_500, 2_000), (7_500, 5_000), (12_500, 10_000), (17_500, 15_000), (25_000, 20_000),
    (45_000, 30_000), (90_000, 60_000), (210_000, 120_000), (450_000, 300_000), (750_000, 600_000),
    (1_050_000, 900_000), (1_500_000, 1_200_000), (2_700_000, 1_800_000), (5_400_000, 3_600_000),
    (9_000_000, 7_200_000), (16_200_000, 10_800_000), (24_300_000, 21_600_000),
    (64_800_000, 43_200_000), (129_600_000, 86_400_000), (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000), (3_628_800_000, 2_592_000_000),
]  # fmt: skip


def parse_interval_ms(text: str) -> int:
    """``'5m'`` -> 300000: Grafana's interval notation (a positive integer and a unit)."""
    m = re.fullmatch(r"\s*['\"]?(\d+)(ms|s|m|h|d|w|y)['\"]?\s*", text)
    if not m or int(m.group(1)) <= 0:
        raise DashboardError(f"error parsing interval {text.strip()!r} (expected e.g. '30s', '5m', '1h')")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


def format_interval(ms: int) -> str:
    """300000 -> ``'5m'``: the largest unit that divides evenly (how ``$__interval`` is written)."""
    for unit in ("y", "w", "d", "h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def auto_interval_ms(rng: TimeRange, max_data_points: int = 1000, min_interval: str = "1s") -> int:
    """Grafana's ``$__interval``: the range over the panel's data points, rounded, at least the minimum."""
    raw = (rng.end - rng.start) / timedelta(milliseconds=1) / max(1, max_data_points)
    rounded = next((to for below, to in _ROUNDING_MS if raw < below), 31_536_000_000)
    return max(rounded, parse_interval_ms(min_interval))


def _rfc3339nano(t: datetime) -> str:
    """Go's ``time.RFC3339Nano`` in UTC: fraction without trailing zeros, ``Z``."""
    t = t.astimezone(UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        text += "." + f"{t.microsecond:06d}".rstrip("0")
    return text + "Z"


def _go_float(seconds: float) -> str:
    """Go's ``%v`` of a float64 for the magnitudes intervals have: 300, 0.5, 86400."""
    return str(int(seconds)) if seconds == math.floor(seconds) else repr(seconds)


# ------------------------------------------------------------------------------------ SQL macros

_MACRO = re.compile(r"\$__([_a-zA-Z0-9]+)\(([^)]*)\)")


@dataclass
class SqlContext:
    """What Grafana knows when it expands a query: range, interval, variable values."""

    rng: TimeRange
    interval_ms: int = 60_000
    variables: Mapping[str, str] = field(default_factory=dict)


def _time_group(args: list[str]) -> str:
    if len(args) < 2:
        raise DashboardError("macro $__timeGroup needs time column and interval and optional fill value")
    seconds = parse_interval_ms(args[1].strip("'")) / 1000
    return f"floor(extract(epoch from {args[0]})/{_go_float(seconds)})*{_go_float(seconds)}"


def _macro(name: str, args: list[str], ctx: SqlContext) -> str:
    """One macro, as Grafana's PostgreSQL datasource writes it."""
    start, end = ctx.rng.start, ctx.rng.end
    needs_column = {"time", "timeEpoch", "timeFilter", "unixEpochFilter", "unixEpochNanoFilter"}
    if name in needs_column and (not args or not args[0]):
        raise DashboardError(f"missing time column argument for macro $__{name}")
    if name == "time":
        return f'{args[0]} AS "time"'
    if name == "timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "timeFilter":
        return f"{args[0]} BETWEEN '{_rfc3339nano(start)}' AND '{_rfc3339nano(end)}'"
    if name in ("timeFrom", "timeTo"):
        return f"'{_rfc3339nano(start if name == 'timeFrom' else end)}'"
    if name == "timeGroup":
        return _time_group(args)
    if name == "timeGroupAlias":
        return _time_group(args) + ' AS "time"'
    if name == "unixEpochFilter":
        return f"{args[0]} >= {int(start.timestamp())} AND {args[0]} <= {int(end.timestamp())}"
    if name == "unixEpochNanoFilter":
        return f"{args[0]} >= {_nanos(start)} AND {args[0]} <= {_nanos(end)}"
    if name in ("unixEpochFrom", "unixEpochTo"):
        return str(int((start if name == "unixEpochFrom" else end).timestamp()))
    if name in ("unixEpochNanoFrom", "unixEpochNanoTo"):
        return str(_nanos(start if name == "unixEpochNanoFrom" else end))
    raise DashboardError(f"undefined macro: $__{name}")


def _nanos(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def interpolate_variables(text: str, variables: Mapping[str, str]) -> str:
    """``$name`` / ``${name}`` / ``[[name]]`` -> the value with single quotes doubled, as
    Grafana's SQL datasources interpolate a single-value variable (the query adds the quotes).
    Names starting with ``__`` are Grafana's own and left for the macro step."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name.startswith("__") or name not in variables:
            if name.startswith("__"):
                return match.group(0)
            raise DashboardError(f"no value for dashboard variable ${name}")
        return str(variables[name]).replace("'", "''")

    return re.sub(r"\$\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|\[\[([A-Za-z0-9_]+)\]\]|\$([A-Za-z0-9_]+)", value, text)


def expand_sql(sql: str, ctx: SqlContext) -> str:
    """``sql`` as Grafana sends it to PostgreSQL: variables, ``$__interval``, then the macros."""
    sql = interpolate_variables(sql, ctx.variables)
    sql = sql.replace("$__interval_ms", str(ctx.interval_ms)).replace("$__interval", format_interval(ctx.interval_ms))
    sql = sql.replace("$__unixEpochFrom()", str(int(ctx.rng.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(ctx.rng.end.timestamp())))

    def one(match: re.Match[str]) -> str:
        args = [a.strip() for a in match.group(2).split(",")] if match.group(2).strip() else []
        return _macro(match.group(1), args, ctx)

    return _MACRO.sub(one, sql)


def expand_promql(expr: str, rng: TimeRange, interval_ms: int, scrape_interval_ms: int, variables: Mapping[str, str] | None = None) -> str:
    """PromQL as Grafana's Prometheus datasource sends it: ``$__rate_interval`` is
    max(``$__interval`` + scrape interval, 4 x scrape interval); ``$__range`` the whole range."""
    range_ms = int((rng.end - rng.start) / timedelta(milliseconds=1))
    rate_ms = max(interval_ms + scrape_interval_ms, 4 * scrape_interval_ms)
    out = (
        expr.replace("$__rate_interval", format_interval(rate_ms))
        .replace("$__interval_ms", str(interval_ms))
        .replace("$__interval", format_interval(interval_ms))
        .replace("$__range_ms", str(range_ms))
        .replace("$__range_s", str(range_ms // 1000))
        .replace("$__range", format_interval(range_ms // 1000 * 1000))
    )
    return interpolate_variables(out, variables or {})


# ------------------------------------------------------------------------------------ export / push


def export(dest: Path, source: Path = DEFAULT_SOURCE) -> list[Path]:
    """Write the dashboards (``dest/json``), the provisioning files and ``prometheus.yml``
    under ``dest`` in the layout docker-compose mounts; return the files written."""
    dashboards = load(source)  # refuse a broken source before writing anything
    written: list[Path] = []
    (dest / "json").mkdir(parents=True, exist_ok=True)
    for d in dashboards:
        target = dest / "json" / f"{d.name}.json"
        target.write_text(json.dumps(d.model, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(target)
    for rel in _provisioning_files(source):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, target)
        written.append(target)
    return written


def _provisioning_files(source: Path) -> Iterable[Path]:
    found = sorted(p.relative_to(source) for p in (source / "provisioning").rglob("*.yaml"))
    if (source / "prometheus.yml").exists():
        found.append(Path("prometheus.yml"))
    return found


def save_payload(dashboard: Dashboard, message: str) -> dict[str, Any]:
    """The body of Grafana's ``POST /api/dashboards/db`` for one dashboard: by uid, into the
    Leitstand folder, overwriting the version there (the files are the source of truth)."""
    model = {k: v for k, v in dashboard.model.items() if k not in ("id", "version")}
    return {"dashboard": {**model, "id": None}, "folderUid": FOLDER_UID, "overwrite": True, "message": message}


@dataclass(frozen=True)
class PushResult:
    uid: str
    title: str
    url: str
    version: int | None


def push(
    url: str, dashboards: list[Dashboard], token: str | None = None, basic: tuple[str, str] | None = None, timeout_s: float = 10.0
) -> list[PushResult]:
    """Upload every dashboard through Grafana's HTTP API (``grafana-client``), creating the
    folder first when it does not exist. Raises DashboardError with Grafana's answer."""
    # grafana-client ships no type information (no py.typed)
    from grafana_client import GrafanaApi  # type: ignore[import-untyped]
    from grafana_client.client import GrafanaClientError, GrafanaException  # type: ignore[import-untyped]

    auth: Any = token if token else basic
    if urlsplit(url).path.strip("/") and not url.endswith("/"):
        url += "/"  # grafana-client joins the path and "api" as they are: /grafana + api = /grafanaapi
    where = mask_url(url, mask_all_query=False)
    try:
        api = GrafanaApi.from_url(url, credential=auth, timeout=timeout_s)
        _ensure_folder(api)
        out = []
        for d in dashboards:
            answer = api.dashboard.update_dashboard(save_payload(d, f"leitstand dashboards push ({d.name}.json)"))
            if not isinstance(answer, dict):  # a login page behind a redirect, a proxy's answer
                raise DashboardError(f"{where} did not answer as Grafana's API does (got {type(answer).__name__})")
            out.append(PushResult(d.uid, d.title, str(answer.get("url", "")), answer.get("version")))
        return out
    except GrafanaClientError as exc:
        raise DashboardError(f"Grafana refused the upload: HTTP {exc.status_code} {exc.message}") from None
    except GrafanaException as exc:
        raise DashboardError(f"Grafana answered with an error: {exc}") from None
    except OSError as exc:  # connection refused, DNS, TLS
        raise DashboardError(f"cannot reach Grafana at {where}: {str(exc).replace(url, '')[:300]}") from None


def _ensure_folder(api: Any) -> None:
    from grafana_client.client import GrafanaClientError

    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
