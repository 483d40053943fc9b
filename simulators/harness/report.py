"""``leitstand report DIR``: a self-contained HTML page with PNG plots of a run.

Made to be printed for a committee: one message per figure, large type, units on every axis,
the ground truth drawn behind what Leitstand did so a reader sees at a glance whether the
alarm came, and when. Plots are PNG files next to ``index.html`` (no JavaScript, no network).
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from .run_evaluation import alarm_signals, evaluate_run, hourly_actuals, read_jsonl, refuse_links, timestamp_of

SEVERITY_COLOURS = {"critical": "#c62828", "major": "#ef6c00", "minor": "#1565c0", None: "#757575"}
BANDS = {
    "free_chlorine": (0.3, 0.6, "mg/l", "free chlorine (mg/l)"),
    "ph": (6.5, 7.2, "pH", "pH"),
    "redox": (750.0, None, "mV", "redox (mV)"),
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 12,
            "axes.titlesize": 15,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "figure.dpi": 110,
        }
    )
    return plt


def _save(plt: Any, fig: Any, out: Path) -> Path:
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def _text(value: Any) -> str:
    """Any value of the run's files as HTML text: the files are data, and a number field holding
    markup reached the page raw (stop 54's probe)."""
    return html.escape(str(value))


def _safe_name(name: str) -> str:
    """A plot's file name from an id: letters, digits, ``._-`` only, so no id leaves ``plots/``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "_"


def _time_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    lo, hi = ax.get_xlim()
    fmt = "%a %H:%M" if hi - lo > 1.0 else "%H:%M"  # matplotlib dates are in days
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt, tz=timezone.utc))
    ax.set_xlabel("simulated time (UTC)")


def alarm_timeline(
    truth: list[dict[str, Any]], alerts: list[dict[str, Any]], out: Path, span: tuple[float, float] | None = None
) -> Path | None:
    """Truth as bars, alarms as markers, one row per subject."""
    raised = alarm_signals(alerts)
    rows = sorted({t["subject_id"] for t in truth if t.get("expected_alarm")} | {a["subject_id"] for a in raised})
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 0.55 * len(rows) + 2.2))
    y = {s: i for i, s in enumerate(rows)}
    for t in truth:
        if t.get("expected_alarm") and t["subject_id"] in y:
            ax.barh(
                y[t["subject_id"]],
                (t["end"] - t["start"]) / 86_400,
                left=_dt(t["start"]),
                height=0.6,
                color=SEVERITY_COLOURS.get(t.get("severity")),
                alpha=0.25,
                edgecolor="none",
            )
    for sev in ("minor", "major", "critical"):
        pts = [a for a in raised if a["severity"] == sev]
        ax.scatter(
            [_dt(a["at"]) for a in pts],
            [y[a["subject_id"]] for a in pts],
            marker="v",
            s=90,
            color=SEVERITY_COLOURS[sev],
            label=f"{sev} alarm raised",
            zorder=3,
        )
        for a in pts:
            ax.annotate(
                a["kind"],
                (_dt(a["at"]), y[a["subject_id"]]),
                xytext=(6, 6),
                textcoords="offset points",
                fontsize=9,
                color=SEVERITY_COLOURS[sev],
            )
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    if span:
        ax.set_xlim(_dt(span[0]), _dt(span[1]))
    _time_axis(ax)
    ax.set_title("Alarms (triangles) against what really happened (shaded: injected incidents)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=10, frameon=False)
    return _save(plt, fig, out)


def ack_latency(alerts: list[dict[str, Any]], out: Path) -> Path | None:
    """How long people (here: the demo's simulated duty operator) took to acknowledge."""
    times: dict[str, dict[str, Any]] = defaultdict(dict)
    for a in alerts:
        times[a["alarm_id"]][a["transition"]] = a
    pairs = []
    for v in times.values():
        if "raised" in v and "acknowledged" in v:
            raised, acked = timestamp_of(v["raised"]["event_time"]), timestamp_of(v["acknowledged"]["event_time"])
            if raised is not None and acked is not None:  # alerts always carry an event time
                pairs.append((v["raised"], acked - raised))
    if not pairs:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 4))
    for sev in ("minor", "major", "critical"):
        vals = [lat for a, lat in pairs if a["severity"] == sev]
        if vals:
            ax.hist(vals, bins=20, alpha=0.7, color=SEVERITY_COLOURS[sev], label=f"{sev} ({len(vals)})")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("seconds from alarm to acknowledgement (wall clock)")
    ax.set_ylabel("alarms")
    ax.set_title("Acknowledgement latency")
    ax.legend(frameon=False)
    return _save(plt, fig, out)


def pool_water(
    pool: str, readings: list[dict[str, Any]], truth: list[dict[str, Any]], alerts: list[dict[str, Any]], out: Path
) -> Path | None:
    rows = [r for r in readings if r["pool_id"] == pool]
    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(13, 9.5), sharex=True)
    for ax, (param, (lo, hi, _unit, label)) in zip(axes, BANDS.items()):
        pts = [(r["t"], r["values"][param]) for r in rows if param in r["values"]]
        if hi is None:
            hi = max([v for _, v in pts] + [lo]) * 1.05
        ax.axhspan(lo, hi, color="#2e7d32", alpha=0.08, label="legal range (DIN 19643)")
        ax.plot([_dt(t) for t, _ in pts], [v for _, v in pts], color="#37474f", lw=1.2, label="measured")
        for t in truth:
            if t["subject_id"] == pool and t.get("expected_alarm") == f"water_{param}":
                ax.axvspan(_dt(t["start"]), _dt(t["end"]), color="#ef6c00", alpha=0.15)
        for a in alarm_signals(alerts):
            if a["subject_id"] == pool and a["kind"] in (f"water_{param}", f"sensor_{param}"):
                ax.axvline(_dt(a["at"]), color=SEVERITY_COLOURS[a["severity"]], lw=2, ls="--")
        ax.set_ylabel(label)
        ax.legend(loc="upper left", fontsize=10, frameon=False)
    axes[0].set_title(f"{pool}: water quality, true violations shaded, alarms dashed (orange: water, blue: sensor)")
    _time_axis(axes[2])
    return _save(plt, fig, out)


def intersection(
    iid: str, aggregates: list[dict[str, Any]], truth: list[dict[str, Any]], alerts: list[dict[str, Any]], out: Path
) -> Path | None:
    """Occupancy and speed per approach (1-minute aggregates) with incidents and alarms."""
    rows = [a for a in aggregates if a["intersection_id"] == iid and a.get("detector_id") != "history"]
    if not rows:
        return None
    by_approach: dict[str, dict[float, list[tuple[float, float | None]]]] = defaultdict(lambda: defaultdict(list))
    for a in rows:
        approach = a["detector_id"].rsplit("-", 1)[-1].rstrip("0123456789") or a["detector_id"]
        by_approach[approach][timestamp_of(a["window_start"]) or 0].append((a["occupancy_mean"], a.get("speed_kmh_mean")))
    plt = _plt()
    fig, axes = plt.subplots(2, 1, figsize=(13, 7), sharex=True)
    for approach, series in sorted(by_approach.items()):
        ts = sorted(series)
        occ = [sum(o for o, _ in series[t]) / len(series[t]) for t in ts]
        # no vehicle, no speed: a gap in the line, not a drop to zero
        spd = [(sum(v) / len(v)) if (v := [s for _, s in series[t] if s is not None]) else float("nan") for t in ts]
        axes[0].plot([_dt(t) for t in ts], [100 * o for o in occ], lw=1.2, label=f"approach {approach}")
        axes[1].plot([_dt(t) for t in ts], spd, lw=1.2, label=f"approach {approach}")
    for t in truth:
        if t["subject_id"] == iid and t.get("expected_alarm"):
            for ax in axes:
                ax.axvspan(_dt(t["start"]), _dt(t["end"]), color="#ef6c00", alpha=0.12)
    for a in alarm_signals(alerts):
        if a["subject_id"] == iid:
            for ax in axes:
                ax.axvline(_dt(a["at"]), color=SEVERITY_COLOURS[a["severity"]], lw=2, ls="--")
    axes[0].set_ylabel("occupancy (%)")
    axes[1].set_ylabel("speed (km/h)")
    axes[0].set_title(f"Intersection {iid}: injected incidents shaded, alarms dashed")
    axes[0].legend(loc="upper left", fontsize=10, ncol=4, frameon=False)
    _time_axis(axes[1])
    return _save(plt, fig, out)


def forecast_plot(
    series_id: str,
    forecasts: list[dict[str, Any]],
    actuals: dict[tuple[str, int], float],
    truth: list[dict[str, Any]],
    out: Path,
    span: tuple[float, float] | None,
) -> Path | None:
    """What was forecast at the start of the run (with its 80 % band) against what happened."""
    mine = [f for f in forecasts if f["series_id"] == series_id]
    if span:  # forecasts made while the imported history was still loading are not the run's
        mine = [f for f in mine if (timestamp_of(f["origin"]) or 0) >= span[0] - 3600]
    if not mine:
        return None
    first, last = mine[0], mine[-1]
    actual = sorted((h, v) for (sid, h), v in actuals.items() if sid == series_id)
    if span:
        actual = [(h, v) for h, v in actual if span[0] - 2 * 86_400 <= h <= span[1]]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 5))
    ax.plot([_dt(h) for h, _ in actual], [v for _, v in actual], color="#37474f", lw=1.6, label="actual (vehicles per hour)")
    for f, colour, label in ((first, "#1565c0", "forecast at the run's start"), (last, "#ef6c00", "latest forecast")):
        ts = [_dt(timestamp_of(p["timestamp"]) or 0) for p in f["points"]]
        ax.plot(ts, [p["yhat"] for p in f["points"]], color=colour, lw=1.6, label=f"{label} ({f['model']})")
        ax.fill_between(ts, [p["yhat_lower"] for p in f["points"]], [p["yhat_upper"] for p in f["points"]], color=colour, alpha=0.15)
        if f is last:
            break
    iid = series_id.split("/", 1)[1]
    for t in truth:
        if t["kind"] == "event" and iid in t.get("details", {}).get("intersections", []):
            ax.axvspan(_dt(t["start"]), _dt(t["end"]), color="#6a1b9a", alpha=0.12)
            ax.annotate(
                str(t["details"].get("schedule_kind", "event")), (_dt(t["start"]), ax.get_ylim()[1] * 0.92), fontsize=10, color="#6a1b9a"
            )
    ax.set_ylabel("vehicles per hour")
    ax.set_title(f"{series_id}: forecast (bands: 80 % interval) against actual; events shaded")
    ax.legend(loc="upper left", fontsize=10, frameon=False)
    _time_axis(ax)
    return _save(plt, fig, out)


def consumer_lag(samples: list[dict[str, Any]], out: Path, city_finished_s: float | None = None) -> Path | None:
    """The worker's consumer lag over the run: records on its input topics it had not yet
    committed, per topic as the broker saw it (end minus committed offsets), and the total the
    worker itself exported (``leitstand_consumer_lag``, sampled by the worker every 5 s)."""
    if not samples:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(13, 4.5))
    ts = [r["t"] for r in samples]
    topics = sorted({t for r in samples for t in r.get("lag", {})})
    moving = [t for t in topics if any(r.get("lag", {}).get(t) for r in samples)]
    for topic in moving:
        ax.plot(ts, [r.get("lag", {}).get(topic, 0) for r in samples], lw=1.6, marker=".", label=topic)
    ax.plot(
        ts,
        [sum(r.get("metric", {}).values()) for r in samples],
        color="#424242",
        lw=1.2,
        ls="--",
        label="total, as the worker's /metrics said",
    )
    if city_finished_s is not None:
        ax.axvline(city_finished_s, color="#6a1b9a", lw=1.5)
        ax.axvspan(city_finished_s, max(ts[-1], city_finished_s), color="#6a1b9a", alpha=0.08)
        ax.annotate(" city finished: waiting for the worker", (city_finished_s, ax.get_ylim()[1] * 0.95), fontsize=10, color="#6a1b9a")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("wall-clock seconds since the city started")
    ax.set_ylabel("records not yet consumed")
    ax.set_title("Worker consumer lag per input topic (0: the worker has read everything sent)")
    still = len(topics) - len(moving)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        fontsize=10,
        ncol=4,
        frameon=False,
        title=f"{still} more input topics were at 0 in every sample" if still else None,
        title_fontsize=10,
    )
    return _save(plt, fig, out)


def _lag_paragraph(wl: dict[str, Any]) -> str:
    """What the report says about the worker's lag when the run was judged."""
    if not wl.get("measured"):
        return "<p>The worker's consumer lag was not measured in this run.</p>"
    if wl["caught_up"]:
        return (
            f"<p>Judged after the worker had consumed everything the city sent (consumer lag 0 on every input topic; "
            f"waited {_text(wl.get('waited_s'))} s after the city finished).</p>"
        )
    per_topic = ", ".join(f"{html.escape(t)} {n:,}" for t, n in wl["final_lag"].items() if n)
    late = "".join(
        f"<li>{html.escape(str(t['severity'] or ''))} {html.escape(t['kind'])} at {html.escape(t['subject_id'])}, "
        f"began {_dt(t['start']).strftime('%a %H:%M')}</li>"
        for t in wl["judged_late"]
    )
    return (
        f"<p class='warn'><b>Judged late:</b> after waiting {_text(wl.get('waited_s'))} s the worker was still "
        f"{wl.get('final_lag_total'):,} records behind ({per_topic}); it had got to simulated "
        f"{html.escape(str(wl.get('worker_reached') or 'an unknown time'))}. "
        f"These {len(wl['judged_late'])} incidents were judged although the worker may not have read their inputs yet:</p>"
        f"<ul>{late}</ul>"
    )


def _evaluation_table(ev: dict[str, Any]) -> str:
    head = (
        "<tr><th>alarm kind</th><th>incidents</th><th>alarmed</th><th>recall</th><th>false alarms</th><th>precision</th>"
        "<th>median delay</th><th>max delay</th></tr>"
    )
    rows = []
    for kind, r in ev["alarms"]["per_kind"].items():

        def fmt(v: Any, suffix: str = "") -> str:
            return "–" if v is None else f"{v:g}{suffix}"

        rows.append(
            f"<tr><td>{html.escape(kind)}</td><td>{r['incidents']}</td><td>{r['detected']}</td><td>{fmt(r['recall'])}</td>"
            f"<td>{r['false_alarms']}</td><td>{fmt(r['precision'])}</td><td>{fmt(r['delay_median_s'], ' s')}</td>"
            f"<td>{fmt(r['delay_max_s'], ' s')}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _forecast_line(fc: dict[str, Any]) -> str:
    if not fc.get("available"):
        return str(fc.get("note"))
    return (
        f"{fc['forecasts']} refreshes ({', '.join(fc['models'])}), {fc['scored_points']} forecast hours scored: "
        f"MAE {fc['mae']} vehicles/h, weekly seasonal naive {fc['weekly_naive_mae']} "
        f"(ratio {fc['mae_ratio_to_weekly_naive']}), 80 % interval coverage {fc['coverage80']}"
    )


def _pool_table(per_pool: dict[str, dict[str, Any]]) -> str:
    """Each pool on its own (recall, delay, false alarms): no pool may be served worse."""
    if not per_pool:
        return ""
    head = "<tr><th>pool</th><th>incidents</th><th>recall</th><th>median delay (s)</th><th>false alarms / day</th><th>critical</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(p)}</td><td>{r['incidents']}</td><td>{r['recall'] if r['recall'] is not None else '-'}</td>"
        f"<td>{r['delay_median_s'] if r['delay_median_s'] is not None else '-'}</td><td>{r['false_alarms_per_day']}</td>"
        f"<td>{r['critical_alarmed']}</td></tr>"
        for p, r in per_pool.items()
    )
    return f"<h2>Pools side by side</h2><table>{head}{rows}</table>"


def _bus_line(bus: dict[str, Any]) -> str:
    """One sentence on bus punctuality and bunching against the truth (older runs: nothing)."""
    if not bus:
        return "not evaluated in this run"
    m = bus.get("measured") or {}
    punctual = m.get("punctuality")
    cv = m.get("headway_cv_max")
    parts = [
        f"{bus['episodes_alarmed']} of {bus['bunching_episodes']} bunching episodes in the truth alarmed",
        f"{bus['bunching_alarms']} bunching and {bus['gap_alarms']} gap alarms",
        f"punctuality {punctual:.0%} of stop passages within -1..+3 min" if isinstance(punctual, float) else "no punctuality measured",
    ]
    if isinstance(cv, float):
        parts.append(f"headway variation of the least regular line {cv:.2f}")
    return "; ".join(parts)


def _signal_section(run_dir: Path) -> str:
    """Per junction: mode, decisions with their rules and a few explained examples, proposals
    approved / expired (advisory), and the delay against the shadow fixed-time queue."""
    try:
        signals = orjson.loads((run_dir / "summary.json").read_bytes()).get("signals") or {}
    except (OSError, orjson.JSONDecodeError, AttributeError):
        signals = {}
    per = signals.get("intersections") or {}
    if not per:
        return "<h2>Signal control</h2><p>Not run: no control worker in this run (closed loop on SUMO networks: leitstand sumo eval).</p>"

    def num(v: Any, fmt: str = "{:g}") -> str:
        return fmt.format(v) if isinstance(v, (int, float)) else "-"

    ratio = signals.get("delay_ratio")
    head = (
        "<tr><th>junction</th><th>mode</th><th>frames answered</th><th>decisions</th><th>by rule</th>"
        "<th>proposals approved / expired / pending</th><th>delay controlled (veh·h)</th><th>delay fixed time (veh·h)</th>"
        "<th>controlled / fixed</th></tr>"
    )
    rows, examples = [], []
    for iid, j in per.items():
        d = j.get("delay") or {}
        rules = ", ".join(f"{html.escape(r)} {_text(n)}" for r, n in (j.get("rules") or {}).items()) or "-"
        counts = (_text(j.get(k, 0)) for k in ("approved", "expired", "pending_at_end"))
        advisory = " / ".join(counts) if j.get("mode") == "advisory" else "-"
        rows.append(
            f"<tr><td>{html.escape(iid)}</td><td>{html.escape(str(j.get('mode')))}</td><td>{_text(j.get('frames_answered', 0))}</td>"
            f"<td>{_text(j.get('decisions', 0))}</td><td>{rules}</td><td>{advisory}</td><td>{num(d.get('controlled_veh_h'))}</td>"
            f"<td>{num(d.get('fixed_veh_h'))}</td><td>{num(d.get('delay_ratio'), '{:.2f}')}</td></tr>"
        )
        for e in (j.get("examples") or [])[:2]:
            examples.append(
                f"<li><b>{html.escape(iid)}</b> {html.escape(e['time'][11:16])} "
                f"({html.escape(e['status'])}, plan {html.escape(e['plan'])}): "
                f"<code>{html.escape(e['summary'])}</code></li>"
            )
    return (
        "<h2>Signal control</h2>"
        f"<div class='kpi'><b>{num(ratio, '{:.2f}')}</b>delay controlled / fixed time "
        f"({num(signals.get('delay_controlled_veh_h'))} vs {num(signals.get('delay_fixed_veh_h'))} vehicle-hours)</div>"
        f"<p>Controller {html.escape(str(signals.get('controller')))} on the control worker, in closed loop with the city: each "
        "junction's point-queue model takes its green shares from the plan the worker drives (the last one until the next arrives). "
        "Fixed time is a shadow queue per approach fed the same arrivals under the shipped plan; delay = the queue left over at "
        "each frame integrated over time plus the in-cycle (uniform) delay of the arrivals.</p>"
        f"<table>{head}{''.join(rows)}</table><p>Examples of decisions and their explanations:</p><ul>{''.join(examples)}</ul>"
    )


def _span(ev: dict[str, Any]) -> tuple[float, float] | None:
    start, end = timestamp_of(ev["run"].get("simulated_from")), timestamp_of(ev["run"].get("simulated_until"))
    return (start, end) if start is not None and end is not None else None


def _city_finished(run_dir: Path) -> float | None:
    try:
        wait = orjson.loads((run_dir / "summary.json").read_bytes()).get("lag_wait") or {}
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    value = wait.get("city_finished_at_s")
    return float(value) if isinstance(value, (int, float)) else None


def write_report(run_dir: Path) -> Path:
    """Evaluate the run (if not yet done), draw the plots, write ``index.html``; return its path."""
    refuse_links(run_dir)
    ev = evaluate_run(run_dir)
    truth, alerts = read_jsonl(run_dir / "truth.jsonl"), read_jsonl(run_dir / "alerts.jsonl")
    aggregates, readings = read_jsonl(run_dir / "aggregates.jsonl"), read_jsonl(run_dir / "pool_readings.jsonl")
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(exist_ok=True)
    figures: list[tuple[str, Path | None]] = [
        ("Alarm timeline", alarm_timeline(truth, alerts, plots_dir / "alarm_timeline.png", _span(ev))),
        ("Acknowledgement", ack_latency(alerts, plots_dir / "ack_latency.png")),
        ("Worker consumer lag", consumer_lag(read_jsonl(run_dir / "lag.jsonl"), plots_dir / "consumer_lag.png", _city_finished(run_dir))),
    ]
    for pool in sorted({r["pool_id"] for r in readings}):
        figures.append((f"Pool {pool}", pool_water(pool, readings, truth, alerts, plots_dir / _safe_name(f"pool_{pool}.png"))))
    incident_sites = sorted({t["subject_id"] for t in truth if t["kind"] == "incident"})
    busiest = incident_sites or sorted({a["intersection_id"] for a in aggregates})[:2]
    for iid in busiest[:4]:
        figures.append(
            (f"Intersection {iid}", intersection(iid, aggregates, truth, alerts, plots_dir / _safe_name(f"intersection_{iid}.png")))
        )
    forecasts = read_jsonl(run_dir / "forecasts.jsonl")
    near_events = sorted({i for t in truth if t["kind"] == "event" for i in t.get("details", {}).get("intersections", [])})
    actuals = hourly_actuals(aggregates) if forecasts else {}
    for iid in (near_events or sorted({f["series_id"].split("/", 1)[1] for f in forecasts}))[:3]:
        sid = f"intersection/{iid}"
        figures.append(
            (f"Forecast {sid}", forecast_plot(sid, forecasts, actuals, truth, plots_dir / _safe_name(f"forecast_{iid}.png"), _span(ev)))
        )
    lc, al = ev["lifecycle"], ev["alarms"]
    run = ev["run"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Leitstand run report</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.35em .7em;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee;margin:.5em 0}"
        ".kpi{display:inline-block;margin:0 2em 1em 0}.kpi b{font-size:1.8em;display:block}"
        ".warn{background:#fff3e0;border-left:4px solid #ef6c00;padding:.5em 1em}",
        "</style></head><body>",
        "<h1>Leitstand run report</h1>",
        f"<p>Run {html.escape(str(run.get('run_id')))}: simulated {html.escape(str(run.get('simulated_from')))} to "
        f"{html.escape(str(run.get('simulated_until')))}, {_text(run.get('speed'))}× accelerated.</p>",
        f"<div class='kpi'><b>{al['critical_alarmed']} / {al['critical_incidents']}</b>critical incidents alarmed</div>",
        f"<div class='kpi'><b>{al['false_water_alarms_per_subject_day']:g}</b>false water alarms per pool and day</div>",
        f"<div class='kpi'><b>{lc['alarms']}</b>alarms ({lc['acknowledged']} acknowledged, {lc['escalated']} escalated, "
        f"{lc['resolved']} resolved)</div>",
        _lag_paragraph(ev["worker_lag"]),
        "<h2>Evaluation against the ground truth</h2>",
        _evaluation_table(ev),
        f"<p>Forecasts: {html.escape(_forecast_line(ev['forecasts']))}. "
        f"Incidents that began too late in the run to be judged: {len(ev['too_late_to_judge'])}.</p>",
        f"<p>Buses: {html.escape(_bus_line(ev.get('buses') or {}))}.</p>",
        _pool_table(ev["alarms"].get("per_pool") or {}),
        _signal_section(run_dir),
    ]
    for title, path in figures:
        if path is not None:
            parts.append(f"<h2>{html.escape(title)}</h2><img src='plots/{html.escape(path.name)}' alt='{html.escape(title)}'>")
    parts.append("</body></html>")
    index = run_dir / "index.html"
    index.write_text("\n".join(parts), encoding="utf-8")
    return index
