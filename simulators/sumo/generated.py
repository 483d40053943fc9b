"""Held-out SUMO scenarios built by SUMO's own tools, deterministically from a seed (issue 13).

The controller constants were chosen on real development maps; these networks were never looked
at while choosing them. Two networks, each at three demand levels:

``grid``
    a 3x3 grid of signalised four-arm crossings, 200 m apart, two lanes per direction, with a
    200 m dead-end road attached at every border crossing (``netgenerate --grid
    --grid.number=3 --grid.attach-length=200``). Demand: ``randomTrips.py --fringe-factor max``,
    every trip enters and leaves at the border.
``arterial``
    a main road with five signalised crossings of side roads, 250 m apart (``netgenerate --grid
    --grid.x-number=5 --grid.y-number=1 --grid.attach-length=200``, written as plain XML, the
    main road set to two lanes per direction, the side roads kept at one, rebuilt by
    ``netconvert``). Demand: ``randomTrips.py --weights-prefix``: each main-road end weighs
    :data:`MAIN_WEIGHT` as source and as destination, each side-road end 1.

Traffic lights are netgenerate's static default programs (90 s cycle, 3 s yellow): every one is
accepted by :func:`simulators.sumo.network.intersections_from_sumo` (the tests check it).
Trips go through ``randomTrips.py --validate`` (duarouter drops what cannot be routed, e.g. a
U-turn at a dead end), so every vehicle in the route file has a route. Demand is inserted until
``end - CLEAR_S`` so the network can empty before the end; what has not arrived is reported as
unfinished.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

NETWORKS = ("grid", "arterial")

#: randomTrips ``--period`` (seconds between trip departures, before validation) per level and network
PERIODS: dict[str, dict[str, float]] = {
    "grid": {"low": 1.2, "medium": 0.8, "high": 0.6},
    "arterial": {"low": 2.4, "medium": 1.8, "high": 1.5},
}
LEVELS = ("low", "medium", "high")

#: source / destination weight of each main-road end of the arterial (each side-road end: 1)
MAIN_WEIGHT = 6
#: the arterial's dead ends (netgenerate's names for attached roads): main road, side roads
MAIN_ENDS = ("left0", "right0")
SIDE_ENDS = ("top", "bottom")
#: no departures in the last CLEAR_S seconds of a run
CLEAR_S = 300
#: default simulated seconds (half an hour: a leitstand run on the grid takes about 85 s of wall
#: time per simulated hour on the 2-core machine)
END_S = 1800


@dataclasses.dataclass(frozen=True)
class Generated:
    """One built scenario: its configuration and what it was built from."""

    network: str
    level: str
    seed: int
    sumocfg: Path
    vehicles: int


def _env() -> dict[str, str]:
    import sumo

    return {**os.environ, "SUMO_HOME": sumo.SUMO_HOME}


def _tool(name: str) -> str:
    import sumo

    return os.path.join(sumo.SUMO_HOME, "bin", name)


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=_env())
    if done.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} {' '.join(cmd[1:3])} ... failed: {(done.stderr or done.stdout).strip()[-800:]}")


def build_network(network: str, directory: Path) -> Path:
    """Write ``<network>.net.xml`` into ``directory`` (the same file for every seed and level)."""
    directory.mkdir(parents=True, exist_ok=True)
    net = directory / f"{network}.net.xml"
    common = ["--grid", "--grid.attach-length=200", "--no-turnarounds", "--tls.default-type=static"]
    if network == "grid":
        inner = [f"{x}{y}" for x in "ABC" for y in range(3)]
        _run(
            [
                _tool("netgenerate"),
                *common,
                "--grid.number=3",
                "--grid.length=200",
                "--default.lanenumber=2",
                "--tls.set=" + ",".join(inner),
            ]
            + ["-o", net.name],
            directory,
        )
        return net
    if network != "arterial":
        raise ValueError(f"unknown network {network!r}; known: {', '.join(NETWORKS)}")
    crossings = [f"{x}0" for x in "ABCDE"]
    plain = directory / "arterial-plain"
    _run(
        [_tool("netgenerate"), *common, "--grid.x-number=5", "--grid.y-number=1", "--grid.length=250", "--tls.set=" + ",".join(crossings)]
        + ["--plain-output-prefix", plain.name, "-o", f"{plain.name}.net.xml"],
        directory,
    )
    edges = (directory / f"{plain.name}.edg.xml").read_text()
    main = {*crossings, *MAIN_ENDS}

    def widen(m: re.Match[str]) -> str:
        tag = m.group(0)
        frm = re.search(r'from="([^"]+)"', tag)
        to = re.search(r'to="([^"]+)"', tag)
        if frm and to and frm.group(1) in main and to.group(1) in main:
            tag = tag.replace('numLanes="1"', 'numLanes="2"')
        return tag

    (directory / f"{plain.name}.edg.xml").write_text(re.sub(r"<edge [^>]*>", widen, edges))
    _run(
        [_tool("netconvert"), "--node-files", f"{plain.name}.nod.xml", "--edge-files", f"{plain.name}.edg.xml"]
        + ["--no-turnarounds", "--tls.default-type=static", "-o", net.name],
        directory,
    )
    return net


def _arterial_weights(net: Path, prefix: Path) -> None:
    """Source and destination weights: main-road ends MAIN_WEIGHT, side-road ends 1, inner edges 0."""
    import sumolib

    n = sumolib.net.readNet(str(net))
    src, dst = [], []
    for edge in n.getEdges():
        a, b = edge.getFromNode().getID(), edge.getToNode().getID()
        if a in MAIN_ENDS or a.startswith(SIDE_ENDS):
            src.append((edge.getID(), MAIN_WEIGHT if a in MAIN_ENDS else 1))
        if b in MAIN_ENDS or b.startswith(SIDE_ENDS):
            dst.append((edge.getID(), MAIN_WEIGHT if b in MAIN_ENDS else 1))
    for suffix, weights in ((".src.xml", src), (".dst.xml", dst)):
        lines = "\n".join(f'    <edge id="{e}" value="{w}"/>' for e, w in sorted(weights))
        Path(f"{prefix}{suffix}").write_text(f'<edgedata>\n  <interval begin="0" end="1000000">\n{lines}\n  </interval>\n</edgedata>\n')


def build(network: str, level: str, seed: int, directory: Path, end_s: int = END_S) -> Generated:
    """Network, seeded demand and ``.sumocfg`` for one (network, level, seed) in ``directory``.

    The same arguments give the same files (randomTrips and duarouter are seeded)."""
    if level not in LEVELS:
        raise ValueError(f"unknown demand level {level!r}; known: {', '.join(LEVELS)}")
    import sumo

    directory.mkdir(parents=True, exist_ok=True)
    net = directory / f"{network}.net.xml"
    if not net.is_file():
        build_network(network, directory)
    name = f"{network}-{level}-s{seed}"
    trips = directory / f"{name}.trips.xml"
    routes = directory / f"{name}.rou.xml"
    cmd = [
        sys.executable,
        os.path.join(sumo.SUMO_HOME, "tools", "randomTrips.py"),
        "-n",
        net.name,
        "-o",
        trips.name,
        "-r",
        routes.name,
        "--validate",
        "--seed",
        str(seed),
        "-b",
        "0",
        "-e",
        str(max(60, end_s - CLEAR_S)),
        "--period",
        str(PERIODS[network][level]),
        "--prefix",
        f"{level}{seed}_",
        "--trip-attributes",
        'departLane="best" departSpeed="max"',
    ]
    if network == "grid":
        cmd += ["--fringe-factor", "max"]
    else:
        prefix = directory / "arterial-weights"
        _arterial_weights(net, prefix)
        cmd += ["--weights-prefix", prefix.name]
    _run(cmd, directory)
    vehicles = routes.read_text().count("<vehicle ")
    cfg = directory / f"{name}.sumocfg"
    cfg.write_text(f"""<configuration>
  <input><net-file value="{net.name}"/><route-files value="{routes.name}"/></input>
  <time><begin value="0"/><end value="{end_s}"/></time>
</configuration>
""")
    return Generated(network, level, seed, cfg, vehicles)
