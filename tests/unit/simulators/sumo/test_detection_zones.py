"""Detection zones in the SUMO closed loop cover 75 m before the stop line whatever the map calls
edges: a short stub before the signal continues over the lane leading into it."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from simulators.sumo.loop import APPROACH_M, write_detectors
from simulators.sumo.network import intersections_from_sumo, load_sumo_net

pytestmark = pytest.mark.slow  # runs netconvert

NODES = """<nodes>
  <node id="W" x="-300" y="0"/><node id="S1" x="-10" y="0" type="priority"/><node id="C" x="0" y="0" type="traffic_light"/>
  <node id="E" x="300" y="0"/><node id="N" x="0" y="300"/><node id="S" x="0" y="-300"/>
</nodes>"""
EDGES = """<edges>
  <edge id="WS1" from="W" to="S1" numLanes="1"/><edge id="S1C" from="S1" to="C" numLanes="1"/>
  <edge id="CE" from="C" to="E" numLanes="1"/><edge id="NC" from="N" to="C" numLanes="1"/><edge id="CS" from="C" to="S" numLanes="1"/>
</edges>"""


def test_a_short_stub_before_the_stop_line_extends_the_zone_upstream(tmp_path: Path) -> None:
    import sumo

    (tmp_path / "n.nod.xml").write_text(NODES)
    (tmp_path / "n.edg.xml").write_text(EDGES)
    net_file = tmp_path / "n.net.xml"
    subprocess.run(
        [os.path.join(sumo.SUMO_HOME, "bin", "netconvert"), "-n", "n.nod.xml", "-e", "n.edg.xml", "-o", net_file.name, "--no-turnarounds"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={**os.environ, "SUMO_HOME": sumo.SUMO_HOME},
    )
    net = load_sumo_net(net_file)
    signals = intersections_from_sumo(net)
    write_detectors(signals, net, tmp_path / "d.xml")
    zones = {el.get("lanes"): el for el in ET.parse(tmp_path / "d.xml").getroot() if el.tag == "laneAreaDetector"}
    stub, feeder = net.getLane("S1C_0"), net.getLane("WS1_0")
    assert stub.getLength() < 10  # the map's stub: far shorter than a zone
    zone = zones["WS1_0 S1C_0"]  # continued over the lane leading into the stub
    covered = feeder.getLength() - float(zone.get("pos", "nan")) + float(zone.get("endPos", "nan"))
    assert covered == pytest.approx(APPROACH_M, abs=0.05)
    assert "NC_0" in zones and "CE_0" in zones  # long lanes: one lane each, nothing added
    assert float(zones["CE_0"].get("endPos", "nan")) == pytest.approx(APPROACH_M)
    # the model knows each zone's length (what a dead detector's estimate may hold at most)
    length = {la.measured_by: la.length_m for s in signals.values() for la in s.intersection.lanes}
    assert length["in:S1C_0"] == pytest.approx(covered, abs=0.05)
    assert length["in:NC_0"] == length["out:CE_0"] == pytest.approx(APPROACH_M)


CORRIDOR_NODES = """<nodes>
  <node id="W" x="-300" y="0"/><node id="E" x="340" y="0"/>
  <node id="C1" x="0" y="0" type="traffic_light"/><node id="C2" x="40" y="0" type="traffic_light"/>
  <node id="N1" x="0" y="300"/><node id="S1" x="0" y="-300"/><node id="N2" x="40" y="300"/><node id="S2" x="40" y="-300"/>
</nodes>"""
CORRIDOR_EDGES = """<edges>
  <edge id="WC1" from="W" to="C1" numLanes="1"/><edge id="C1C2" from="C1" to="C2" numLanes="1"/>
  <edge id="C2E" from="C2" to="E" numLanes="1"/>
  <edge id="N1C1" from="N1" to="C1" numLanes="1"/><edge id="C1S1" from="C1" to="S1" numLanes="1"/>
  <edge id="N2C2" from="N2" to="C2" numLanes="1"/><edge id="C2S2" from="C2" to="S2" numLanes="1"/>
</edges>"""


def test_two_signals_on_one_short_link_name_its_zone_alike(tmp_path: Path) -> None:
    """The 40 m link C1 -> C2 is C1's exit zone and C2's approach zone, whole: the models name it
    alike, so each signal's detector can stand in for the other's (signals/corridor.py). A long
    road's two ends are different zones."""
    import sumo

    from signals.corridor import zone_peers

    (tmp_path / "n.nod.xml").write_text(CORRIDOR_NODES)
    (tmp_path / "n.edg.xml").write_text(CORRIDOR_EDGES)
    subprocess.run(
        [os.path.join(sumo.SUMO_HOME, "bin", "netconvert"), "-n", "n.nod.xml", "-e", "n.edg.xml", "-o", "n.net.xml", "--no-turnarounds"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        env={**os.environ, "SUMO_HOME": sumo.SUMO_HOME},
    )
    signals = intersections_from_sumo(load_sumo_net(tmp_path / "n.net.xml"))
    assert set(signals) == {"C1", "C2"}
    zones = {(tid, la.measured_by): la.zone for tid, s in signals.items() for la in s.intersection.lanes}
    assert zones[("C1", "out:C1C2_0")] == zones[("C2", "in:C1C2_0")] == "C1C2_0"
    assert zones[("C1", "in:WC1_0")] == "WC1_0@end" and zones[("C2", "out:C2E_0")] == "C2E_0@start"
    peers = zone_peers(s.intersection for s in signals.values())
    assert peers["C1"] == {"out:C1C2_0": (("C2", "in:C1C2_0"),)}
    assert peers["C2"] == {"in:C1C2_0": (("C1", "out:C1C2_0"),)}
