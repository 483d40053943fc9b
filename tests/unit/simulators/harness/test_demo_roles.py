"""Which worker processes `leitstand demo` starts (``LEITSTAND_DEMO_ROLES``), and what it says
when a subset leaves a role out (a value written before the water role existed)."""

from __future__ import annotations

import pytest

from simulators.harness.demo import DEMO_ROLES, demo_roles, left_out
from streams.errors import CliError


def test_the_default_is_one_worker_per_role_and_all_alone_is_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEITSTAND_DEMO_ROLES", raising=False)
    assert demo_roles() == DEMO_ROLES == ("critical", "water", "telemetry", "control")
    monkeypatch.setenv("LEITSTAND_DEMO_ROLES", " all ")
    assert demo_roles() == ("all",)
    assert left_out(("all",)) == [] and left_out(DEMO_ROLES) == []


@pytest.mark.parametrize("raw", ["all,critical", "critical,pumps", "telemetry,Water"])
def test_a_bad_value_is_one_line_naming_the_roles(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LEITSTAND_DEMO_ROLES", raw)
    with pytest.raises(CliError) as refused:
        demo_roles()
    assert "\n" not in str(refused.value) and "critical, water, telemetry, control" in str(refused.value)


def test_an_older_subset_is_told_what_it_leaves_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEITSTAND_DEMO_ROLES", "critical,telemetry,control")
    notes = left_out(demo_roles())
    assert len(notes) == 1 and "no water worker" in notes[0] and "pH" in notes[0]
    assert [n.split()[3] for n in left_out(("control",))] == ["critical", "water", "telemetry"]
