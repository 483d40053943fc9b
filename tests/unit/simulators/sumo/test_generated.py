"""Held-out generated networks (``simulators/sumo/generated.py``): built deterministically by SUMO's
own tools, every traffic light accepted by the loop, fixed time and leitstand drive them safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.sumo import generated
from simulators.sumo.loop import run
from simulators.sumo.network import intersections_from_sumo

pytestmark = pytest.mark.slow  # runs netgenerate, randomTrips and SUMO

CROSSINGS = {"grid": 9, "arterial": 5}


def _body(path: Path) -> str:
    """A generated XML file without its header comment (which carries the time it was written)."""
    return path.read_text().split("-->")[-1]


@pytest.mark.parametrize("network", generated.NETWORKS)
def test_generated_network_is_accepted_and_driven_safely(network: str, tmp_path: Path) -> None:
    built = generated.build(network, "low", 1, tmp_path / "a", end_s=300)
    again = generated.build(network, "low", 1, tmp_path / "b", end_s=300)
    assert built.vehicles == again.vehicles > 20
    name = f"{network}-low-s1.rou.xml"
    assert _body(built.sumocfg.with_name(name)) == _body(again.sumocfg.with_name(name))  # same seed, same demand

    signals = intersections_from_sumo(built.sumocfg.with_name(f"{network}.net.xml"))  # refuses any RiLSA breach
    assert len(signals) == CROSSINGS[network]
    for controller in ("fixed", "leitstand"):
        result = run(built.sumocfg, controller, 1)
        assert result.trips > 20, controller
        assert result.safety_violations == 0, controller
        assert result.teleports == 0, controller
