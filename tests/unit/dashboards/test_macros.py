"""Grafana's PostgreSQL macros and variables, expanded as Grafana does: the examples of
Grafana's PostgreSQL documentation (query editor, "Macros"), byte for byte where the docs give
the exact text, plus the errors Grafana reports."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.dashboards import (
    DashboardError,
    SqlContext,
    TimeRange,
    auto_interval_ms,
    expand_promql,
    expand_sql,
    format_interval,
    interpolate_variables,
    parse_interval_ms,
)

#: the time range of the documentation's examples: 2017-04-21T05:01:17Z .. 05:06:17Z
DOC_RANGE = TimeRange(datetime(2017, 4, 21, 5, 1, 17, tzinfo=UTC), datetime(2017, 4, 21, 5, 6, 17, tzinfo=UTC))
#: the range of the unix-epoch examples: 1494410783 .. 1494497183
EPOCH_RANGE = TimeRange(datetime.fromtimestamp(1494410783, UTC), datetime.fromtimestamp(1494497183, UTC))


def doc(sql: str, rng: TimeRange = DOC_RANGE, **variables: str) -> str:
    return expand_sql(sql, SqlContext(rng, interval_ms=60_000, variables=variables))


@pytest.mark.parametrize(
    ("macro", "expanded"),
    [
        ("$__time(dateColumn)", 'dateColumn AS "time"'),
        ("$__timeEpoch(dateColumn)", 'extract(epoch from dateColumn) as "time"'),
        ("$__timeFilter(dateColumn)", "dateColumn BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"),
        ("$__timeFrom()", "'2017-04-21T05:01:17Z'"),
        ("$__timeTo()", "'2017-04-21T05:06:17Z'"),
        ("$__timeGroup(dateColumn,'5m')", "floor(extract(epoch from dateColumn)/300)*300"),
        ("$__timeGroup(dateColumn,'5m', 0)", "floor(extract(epoch from dateColumn)/300)*300"),
        ("$__timeGroup(dateColumn,'5m', NULL)", "floor(extract(epoch from dateColumn)/300)*300"),
        ("$__timeGroupAlias(dateColumn,'5m')", 'floor(extract(epoch from dateColumn)/300)*300 AS "time"'),
        ("$__timeGroupAlias(window_start, '1h')", 'floor(extract(epoch from window_start)/3600)*3600 AS "time"'),
    ],
)
def test_documented_macros(macro: str, expanded: str) -> None:
    assert doc(macro) == expanded


def test_unix_epoch_macros_of_the_docs() -> None:
    assert doc("$__unixEpochFilter(dateColumn)", EPOCH_RANGE) == "dateColumn >= 1494410783 AND dateColumn <= 1494497183"
    assert doc("$__unixEpochFrom() $__unixEpochTo()", EPOCH_RANGE) == "1494410783 1494497183"
    assert doc("$__unixEpochNanoFilter(t)", EPOCH_RANGE) == "t >= 1494410783000000000 AND t <= 1494497183000000000"


def test_milliseconds_are_kept_like_go_rfc3339nano() -> None:
    rng = TimeRange(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC), datetime(2026, 1, 2, 4, 0, 0, tzinfo=UTC))
    assert doc("$__timeFrom()", rng) == "'2026-01-02T03:04:05.12Z'"


def test_a_whole_query_and_the_interval_variables() -> None:
    sql = (
        "SELECT $__timeGroupAlias(window_start, $__interval), sum(count_sum) AS v, $__interval_ms AS ms FROM aggregates "
        "WHERE intersection_id = '$intersection' AND $__timeFilter(window_start) GROUP BY 1 ORDER BY 1"
    )
    assert doc(sql, intersection="I-1") == (
        'SELECT floor(extract(epoch from window_start)/60)*60 AS "time", sum(count_sum) AS v, 60000 AS ms FROM aggregates '
        "WHERE intersection_id = 'I-1' AND window_start BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z' "
        "GROUP BY 1 ORDER BY 1"
    )


def test_single_value_variables_double_quotes_and_take_every_syntax() -> None:
    assert interpolate_variables("'$a' '${a}' '[[a]]' '${a:raw}'", {"a": "x'y"}) == "'x''y' 'x''y' 'x''y' 'x''y'"
    # Grafana's own $__ names are left for the macro step
    assert interpolate_variables("$__interval", {}) == "$__interval"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("$__nope(x)", "undefined macro: $__nope"),
        ("$__timeFilter()", "missing time column argument for macro $__timeFilter"),
        ("$__timeGroup(x)", "needs time column and interval"),
        ("$__timeGroup(x, '5 minutes')", "error parsing interval"),
        ("$__timeGroup(x, '0m')", "error parsing interval"),
        ("WHERE id = '$missing'", "no value for dashboard variable $missing"),
    ],
)
def test_what_grafana_refuses_is_refused(sql: str, message: str) -> None:
    with pytest.raises(DashboardError, match=message.replace("$", r"\$")):
        doc(sql)


def test_intervals() -> None:
    parsed = [parse_interval_ms(t) for t in ("500ms", "30s", "'5m'", "1h", "1d", "1w")]
    assert parsed == [500, 30_000, 300_000, 3_600_000, 86_400_000, 604_800_000]
    assert [format_interval(ms) for ms in (500, 30_000, 90_000, 3_600_000, 86_400_000)] == ["500ms", "30s", "90s", "1h", "1d"]
    six_hours = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 6, tzinfo=UTC))
    # 6 h over 1000 points = 21.6 s -> Grafana rounds to 20 s; the datasource minimum can raise it
    assert auto_interval_ms(six_hours, 1000) == 20_000
    assert auto_interval_ms(six_hours, 1000, min_interval="1m") == 60_000
    with pytest.raises(DashboardError):
        TimeRange(six_hours.end, six_hours.start)


def test_promql_rate_interval_is_grafanas() -> None:
    expr = "rate(x_bucket[$__rate_interval]) / $__range_s"
    rng = TimeRange(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 1, tzinfo=UTC))
    # max(interval + scrape, 4 x scrape)
    assert expand_promql(expr, rng, interval_ms=15_000, scrape_interval_ms=15_000) == "rate(x_bucket[1m]) / 3600"
    assert expand_promql(expr, rng, interval_ms=60_000, scrape_interval_ms=15_000) == "rate(x_bucket[75s]) / 3600"
