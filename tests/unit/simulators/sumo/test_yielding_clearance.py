"""The SUMO reader gives permissive left turns a yielding clearance from the junction's geometry:
an adaptive change straight from the permissive stage to the cross stage waits for turners still
standing inside; the shipped program, which protects those turns first, drives unchanged."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from signals.timeline import build_timeline
from simulators.sumo.network import from_rest_s, intersections_from_sumo, load_internal_net, load_sumo_net

pytestmark = pytest.mark.slow  # runs netconvert

NODES = """<nodes>
  <node id="C" x="0" y="0" type="traffic_light"/>
  <node id="W" x="-300" y="0"/><node id="E" x="300" y="0"/><node id="N" x="0" y="300"/><node id="S" x="0" y="-300"/>
</nodes>"""
# three lanes in, so netconvert gives the left turns a lane of their own and a protected phase
# after the main one (the pattern of cologne3's GS cluster)
EDGES = """<edges>
  <edge id="WC" from="W" to="C" numLanes="3"/><edge id="CE" from="C" to="E" numLanes="2"/>
  <edge id="EC" from="E" to="C" numLanes="3"/><edge id="CW" from="C" to="W" numLanes="2"/>
  <edge id="NC" from="N" to="C" numLanes="3"/><edge id="CS" from="C" to="S" numLanes="2"/>
  <edge id="SC" from="S" to="C" numLanes="3"/><edge id="CN" from="C" to="N" numLanes="2"/>
</edges>"""


@pytest.fixture(scope="module")
def net_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sumo

    d = tmp_path_factory.mktemp("yield")
    (d / "n.nod.xml").write_text(NODES)
    (d / "n.edg.xml").write_text(EDGES)
    subprocess.run(
        [os.path.join(sumo.SUMO_HOME, "bin", "netconvert"), "-n", "n.nod.xml", "-e", "n.edg.xml", "-o", "n.net.xml", "--no-turnarounds"],
        cwd=d,
        check=True,
        capture_output=True,
        env={**os.environ, "SUMO_HOME": sumo.SUMO_HOME},
    )
    return d / "n.net.xml"


def test_permissive_turns_get_a_clearance_from_the_path_left_after_their_wait_point(net_file: Path) -> None:
    x = intersections_from_sumo(net_file)["C"].intersection
    yielders = {g for st in x.stages for g in st.yielding}
    assert yielders  # the left turns are permissive in the main stages
    for g in yielders:
        clearance = x.groups[g].yielding_clearance_s
        assert clearance is not None
        # the group's yellow plus a start from rest over a few metres to a few tens of metres
        assert x.groups[g].yellow_s + from_rest_s(2.0) < clearance < x.groups[g].yellow_s + from_rest_s(40.0)
    assert all(x.groups[g].yielding_clearance_s is None for g in set(x.groups) - yielders)
    # straight from a permissive main stage to the cross one: the clearance, not the 3 s yellow
    main = next(st for st in x.stages if st.yielding)
    cross = next(st for st in x.stages if st.yielding and not st.groups & main.groups)
    (g,) = main.yielding
    assert x.transition_s(main.id, cross.id) == pytest.approx(x.groups[g].yielding_clearance_s)
    assert x.transition_s(main.id, cross.id) > max(x.intergreen_s[(g, e)] for e in cross.groups if x.conflicting(g, e))


def test_the_shipped_program_drives_as_shipped(net_file: Path) -> None:
    x = intersections_from_sumo(net_file)["C"].intersection
    # 33 + 3 + 6 + 3 per direction: the program's own cycle, nothing added
    assert build_timeline(x, x.fixed_plan).duration_s == pytest.approx(90.0)


def test_without_the_junction_lanes_there_is_no_clearance(net_file: Path) -> None:
    bare = intersections_from_sumo(load_sumo_net(net_file))["C"].intersection
    assert all(g.yielding_clearance_s is None for g in bare.groups.values())
    given = intersections_from_sumo(load_sumo_net(net_file), internal=load_internal_net(net_file))["C"].intersection
    assert given == intersections_from_sumo(net_file)["C"].intersection
