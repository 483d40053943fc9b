"""``leitstand evaluate DIR``: score a run's outputs against the ground truth it recorded.

Reads the files a demo run writes (``truth.jsonl``, ``alerts.jsonl``, ``summary.json`` and,
when those capabilities exist, ``forecasts.jsonl`` / ``plans.jsonl``) and writes
``evaluation.json``. The scoring rules are ``detection.evaluation`` (pure); this module only
reads files and decides what a run can fairly be judged on: incidents that began in the last
minutes of the simulated time could not have been confirmed yet and are listed as "too late to
judge", not counted as misses.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from detection.evaluation import RaisedAlarm, Truth, evaluate_alarms

JUDGE_MARGIN_S = 600.0  # simulated seconds an incident needs before the run's end to be judged


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue  # a torn last line of an interrupted run
    return out


class RunError(ValueError):
    """A run directory that cannot be scored: not a finished run, or a file of it is malformed."""


#: the fields a truth row and an alert row must carry, with the types the scoring reads
_TRUTH_FIELDS = {"subject_id": str, "kind": str, "start": (int, float), "end": (int, float)}
_ALERT_FIELDS = {"alarm_id": str, "transition": str}
_RAISED_FIELDS = {"subject_id": str, "kind": str, "severity": str}


def check_run(run_dir: Path) -> None:
    """Refuse, with one :class:`RunError` naming the file and line, a directory that is not a
    finished run: no ``summary.json`` (the run was interrupted, or is still running, and
    scoring it would count every incident after the interruption as missed), a summary marked
    as interrupted, or a row the scoring cannot read."""
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise RunError(f"{run_dir} holds no summary.json: the run was interrupted or has not finished, and is not scored")
    try:
        summary = orjson.loads(summary_path.read_bytes())
    except (orjson.JSONDecodeError, OSError) as exc:
        raise RunError(f"{summary_path}: not a JSON summary ({exc})") from None
    if not isinstance(summary, dict):
        raise RunError(f"{summary_path}: not a JSON object")
    if summary.get("interrupted") or summary.get("stopped_cleanly") is False:
        raise RunError(f"{run_dir}: the run was interrupted (summary.json says so) and is not scored")
    for key in ("simulated_from", "simulated_until"):
        try:
            timestamp_of(summary.get(key))
        except (TypeError, ValueError):
            raise RunError(f"{summary_path}: {key} is not a time: {summary.get(key)!r}") from None
    if not (run_dir / "alerts.jsonl").is_file():  # scored as "no alarm at all": every incident missed
        raise RunError(f"{run_dir} holds no alerts.jsonl: the alarms of the run are missing, and it is not scored")
    for number, row in _rows(run_dir / "truth.jsonl"):
        where = f"{run_dir / 'truth.jsonl'} line {number}"
        _require(row, where, _TRUTH_FIELDS if row.get("expected_alarm") is not None else {})
    for number, row in _rows(run_dir / "alerts.jsonl"):
        where = f"{run_dir / 'alerts.jsonl'} line {number}"
        _require(row, where, _ALERT_FIELDS)
        if row["transition"] in ("raised", "reraised", "occurred"):
            _require(row, where, {**_RAISED_FIELDS, "raised_at": (str, int, float)})
        for key in ("raised_at", "last_occurrence_at", "event_time"):
            try:
                timestamp_of(row.get(key))
            except (TypeError, ValueError):
                raise RunError(f"{where}: {key} is not a time: {row.get(key)!r}") from None


def _rows(path: Path) -> Any:
    if not path.is_file():
        return
    lines = path.read_bytes().splitlines()
    last = max((n for n, line in enumerate(lines, start=1) if line.strip()), default=0)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            if number == last:
                continue  # a torn last line; read_jsonl skips it too
            # anywhere else a row would be scored as missing: an incident dropped, an alarm called false
            raise RunError(f"{path} line {number}: not JSON ({exc})") from None
        if not isinstance(row, dict):
            raise RunError(f"{path} line {number}: not a JSON object")
        yield number, row


def _require(row: dict[str, Any], where: str, fields: dict[str, Any]) -> None:
    for key, kind in fields.items():
        if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
            raise RunError(f"{where}: {key} is missing or not a {getattr(kind, '__name__', 'number')}")


def timestamp_of(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def alarm_signals(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every time the alarm system answered a trigger: a new alarm, or a new occurrence of an
    open one (``reraised``, ``occurred``), with ``at`` the trigger's event time."""
    out = []
    for a in alerts:
        if a.get("transition") == "raised":
            out.append({**a, "at": timestamp_of(a["raised_at"]) or 0.0})
        elif a.get("transition") in ("reraised", "occurred"):
            out.append({**a, "at": timestamp_of(a.get("last_occurrence_at") or a["raised_at"]) or 0.0})
    return out


def refuse_links(run_dir: Path) -> None:
    """The evaluation and the report write only inside the run directory: an output that is a
    symbolic link (to a file elsewhere) is refused, not followed (stop 54's probe overwrote a
    file outside it)."""
    for name in ("index.html", "evaluation.json", "plots"):
        if (run_dir / name).is_symlink():
            raise RunError(f"{run_dir / name} is a symbolic link: the report writes only inside the run directory")


def evaluate_run(run_dir: Path) -> dict[str, Any]:
    """The evaluation of one run directory (also written to ``evaluation.json``)."""
    summary = orjson.loads((run_dir / "summary.json").read_bytes()) if (run_dir / "summary.json").is_file() else {}
    truth_rows = read_jsonl(run_dir / "truth.jsonl")
    alerts = read_jsonl(run_dir / "alerts.jsonl")
    sim_start, sim_end = timestamp_of(summary.get("simulated_from")), timestamp_of(summary.get("simulated_until"))
    judged, late = [], []
    for t in truth_rows:
        if t.get("expected_alarm") is None:
            continue
        if sim_end is not None and t["start"] > sim_end - JUDGE_MARGIN_S:
            late.append(t)
        else:
            judged.append(Truth(t["subject_id"], t["kind"], t["start"], t["end"], t["expected_alarm"], t.get("severity")))
    raised = [RaisedAlarm(a["subject_id"], a["kind"], a["severity"], a["at"]) for a in alarm_signals(alerts)]
    wait = summary.get("lag_wait") if isinstance(summary.get("lag_wait"), dict) else None
    days = max(1e-9, ((sim_end or 0) - (sim_start or 0)) / 86_400) if sim_start and sim_end else 1.0
    pools = (summary.get("city") or {}).get("pools") or len({a.subject_id for a in raised if a.kind.startswith("water_")})
    alarms = evaluate_alarms(judged, raised, days=days, subjects=max(1, int(pools)))
    alarms["per_pool"] = per_pool(judged, raised, days)
    by_id: dict[str, dict[str, Any]] = {}
    for a in alerts:
        by_id.setdefault(a["alarm_id"], {})[a["transition"]] = timestamp_of(a.get("event_time"))
    ack_latency = sorted(v["acknowledged"] - v["raised"] for v in by_id.values() if "raised" in v and "acknowledged" in v)
    lifecycle = {
        "alarms": len(by_id),
        "acknowledged": sum("acknowledged" in v for v in by_id.values()),
        "escalated": sum("escalated" in v for v in by_id.values()),
        "resolved": sum("resolved" in v for v in by_id.values()),
        "ack_latency_median_s": round(ack_latency[len(ack_latency) // 2], 1) if ack_latency else None,
    }
    result = {
        "run": {k: summary.get(k) for k in ("run_id", "simulated_from", "simulated_until", "speed", "minutes")},
        "alarms": alarms,
        "too_late_to_judge": late,
        "worker_lag": _worker_lag(wait, judged),
        "lifecycle": lifecycle,
        "forecasts": _forecast_error(read_jsonl(run_dir / "forecasts.jsonl"), read_jsonl(run_dir / "aggregates.jsonl")),
        "signals": _signals(summary.get("signals")),
        "buses": bus_evaluation(truth_rows, alerts, summary.get("buses")),
    }
    refuse_links(run_dir)
    (run_dir / "evaluation.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return result


#: alarm kinds a pool raises (water rules, sensor faults, camera events)
POOL_KINDS = ("water_", "sensor_", "motionless_swimmer", "person_in_closed_zone")


def per_pool(judged: list[Truth], raised: list[RaisedAlarm], days: float) -> dict[str, dict[str, Any]]:
    """Fairness between pools (issue 18): recall, median alarm delay and false alarms per day for
    each pool on its own, so a pool in one district served worse than the others shows up."""
    pools = sorted({t.subject_id for t in judged if t.expected_alarm and t.expected_alarm.startswith(POOL_KINDS)})
    pools += sorted({a.subject_id for a in raised if a.kind.startswith(POOL_KINDS)} - set(pools))
    out: dict[str, dict[str, Any]] = {}
    for pool in pools:
        truth, alarms = [t for t in judged if t.subject_id == pool], [a for a in raised if a.subject_id == pool]
        mine = evaluate_alarms(truth, alarms, days=days, subjects=1)
        rows = mine["per_kind"].values()
        incidents, detected = sum(r["incidents"] for r in rows), sum(r["detected"] for r in rows)
        delays = sorted(d for r in rows for d in r["delays_s"])
        out[pool] = {
            "incidents": incidents,
            "recall": round(detected / incidents, 3) if incidents else None,
            "delay_median_s": delays[len(delays) // 2] if delays else None,
            "false_alarms_per_day": round(sum(r["false_alarms"] for r in rows) / days, 2),
            "critical_alarmed": f"{mine['critical_alarmed']}/{mine['critical_incidents']}",
        }
    return out


def bus_evaluation(truth_rows: list[dict[str, Any]], alerts: list[dict[str, Any]], measured: Any) -> dict[str, Any]:
    """Bus bunching against the city's truth, per line: the episodes the city recorded (two buses
    within 30 % of the planned headway at two or more stops in a row) and whether the bus agent
    raised a bunching alarm for that line during or within 10 minutes after an episode. The agent
    alarms below 50 % of the planned headway, a wider net, so alarms without an episode are
    counted, not called false. Punctuality and headway variation are the agent's own figures."""
    episodes = [t for t in truth_rows if t.get("kind") == "bus_bunching"]
    raised = [a for a in alarm_signals(alerts) if a.get("kind") in ("bus_bunching", "bus_gap")]
    bunching = [a for a in raised if a["kind"] == "bus_bunching"]
    caught = sum(
        any(a["subject_id"] == t["subject_id"] and t["start"] - 60 <= a["at"] <= t["end"] + 600 for a in bunching) for t in episodes
    )
    return {
        "bunching_episodes": len(episodes),
        "episodes_alarmed": caught,
        "bunching_alarms": len(bunching),
        "gap_alarms": sum(a["kind"] == "bus_gap" for a in raised),
        "measured": measured if isinstance(measured, dict) else {},
    }


def _worker_lag(wait: dict[str, Any] | None, judged: list[Truth]) -> dict[str, Any]:
    """Whether the run was judged after the worker had consumed everything the city sent; if
    the demo's wait ran out, how far behind it was and which judged incidents began later than
    the worker had got in simulated time (or within ``JUDGE_MARGIN_S`` of it): judged late, as
    their alarms may only have been missing because the worker had not read their inputs yet."""
    if wait is None:
        return {"measured": False}
    out: dict[str, Any] = {
        "measured": True,
        "caught_up": bool(wait.get("caught_up")),
        "waited_s": wait.get("waited_s"),
        "final_lag": wait.get("final_lag") or {},
        "final_lag_total": wait.get("final_lag_total"),
        "worker_reached": wait.get("worker_reached"),
        "judged_late": [],
    }
    if not out["caught_up"]:
        reached = timestamp_of(wait.get("worker_reached"))
        out["judged_late"] = [
            {"subject_id": t.subject_id, "kind": t.kind, "start": t.start, "severity": t.severity}
            for t in judged
            if reached is None or t.start > reached - JUDGE_MARGIN_S
        ]
    return out


def hourly_actuals(aggregates: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
    """(``intersection/<id>``, hour) -> vehicles, from 1-minute aggregates and imported history.

    The newest live hour is still filling and is left out.
    """
    sums: dict[tuple[str, int], float] = {}
    for a in aggregates:
        hour = int((timestamp_of(a["window_start"]) or 0) // 3600 * 3600)
        key = (f"intersection/{a['intersection_id']}", hour)
        sums[key] = sums.get(key, 0.0) + a["count_sum"]
    live = [timestamp_of(a["window_start"]) or 0 for a in aggregates if a.get("detector_id") != "history"]
    last = int(max(live) // 3600 * 3600) if live else None
    return {k: v for k, v in sums.items() if last is None or k[1] < last}


def _forecast_error(forecasts: list[dict[str, Any]], aggregates: list[dict[str, Any]]) -> dict[str, Any]:
    """Every forecast point whose hour the run observed, against what happened and against
    the weekly seasonal naive (the same hour a week before) on the same points."""
    if not forecasts:
        return {"available": False, "note": "no forecasts in this run"}
    actual = hourly_actuals(aggregates)
    errors, naive_errors, inside = [], [], []
    for f in forecasts:
        for p in f["points"]:
            hour = int(timestamp_of(p["timestamp"]) or 0)
            key = (f["series_id"], hour)
            week_ago = actual.get((f["series_id"], hour - 7 * 86_400))
            if key not in actual or week_ago is None:
                continue
            errors.append(abs(p["yhat"] - actual[key]))
            naive_errors.append(abs(week_ago - actual[key]))
            inside.append(p["yhat_lower"] <= actual[key] <= p["yhat_upper"])
    mae = sum(errors) / len(errors) if errors else None
    naive = sum(naive_errors) / len(naive_errors) if naive_errors else None
    return {
        "available": True,
        "forecasts": len(forecasts),
        "scored_points": len(errors),
        "models": sorted({f["model"] for f in forecasts}),
        "mae": round(mae, 2) if mae is not None else None,
        "weekly_naive_mae": round(naive, 2) if naive is not None else None,
        "mae_ratio_to_weekly_naive": round(mae / naive, 3) if mae is not None and naive else None,
        "coverage80": round(sum(inside) / len(inside), 3) if inside else None,
    }


def _signals(signals: dict[str, Any] | None) -> dict[str, Any]:
    """The demo's signal control as its summary recorded it (decisions per junction, delay
    against the shadow fixed-time queue); a run without a control worker has none."""
    if not signals or not signals.get("intersections"):
        return {
            "available": False,
            "note": "no signal control in this run (no control worker); closed loop on SUMO networks: leitstand sumo eval",
        }
    per = signals["intersections"]
    return {
        "available": True,
        "controller": signals.get("controller"),
        "decisions": sum(j.get("decisions", 0) for j in per.values()),
        "intersections_with_decisions": sum(j.get("decisions", 0) > 0 for j in per.values()),
        "intersections": len(per),
        "delay_controlled_veh_h": signals.get("delay_controlled_veh_h"),
        "delay_fixed_veh_h": signals.get("delay_fixed_veh_h"),
        "delay_ratio": signals.get("delay_ratio"),
        "approved": sum(j.get("approved", 0) for j in per.values()),
        "expired": sum(j.get("expired", 0) for j in per.values()),
    }
