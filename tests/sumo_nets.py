"""Small SUMO scenarios built by SUMO's own ``netgenerate`` (tests never depend on ../shared).

``single``: one signalised four-arm crossing (node B1 of a 3x3 grid, two lanes per direction);
``grid``: a 2x2 grid of signalised crossings (inner nodes of a 4x4 grid); ``pair``: two
signalised crossings 15 m apart on one main road (a 2x1 grid, one lane per direction), the short
link between two signals that leitstand treats as one junction (docs/signals.md). Demand is a set
of flows with strong main-road / weak side-road asymmetry, which is what adaptive control is for.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

FLOWS = {
    "single": [
        ("A1B1", "B1C1", 700),
        ("C1B1", "B1A1", 550),
        ("B2B1", "B1B0", 160),
        ("B0B1", "B1B2", 120),
        ("A1B1", "B1B2", 90),
        ("C1B1", "B1B0", 80),
    ],
    "grid": [
        ("A1B1", "C1D1", 600),
        ("D1C1", "B1A1", 450),
        ("A2B2", "C2D2", 300),
        ("B0B1", "B2B3", 150),
        ("C3C2", "C1C0", 200),
        ("D2C2", "B2A2", 250),
    ],
    "pair": [
        ("left0A0", "B0right0", 500),
        ("right0B0", "A0left0", 450),
        ("top0A0", "B0right0", 150),
        ("bottom1B0", "A0left0", 150),
        ("top1B0", "B0bottom1", 150),
        ("bottom0A0", "A0top0", 150),
    ],
}


def build(kind: str, directory: Path, end_s: int = 600) -> Path:
    """Write <kind>.net.xml, <kind>.rou.xml and <kind>.sumocfg into ``directory``; return the cfg."""
    import sumo

    directory.mkdir(parents=True, exist_ok=True)
    net = directory / f"{kind}.net.xml"
    args = {
        "single": ["--grid.length=200", "--grid.number=3", "--default.lanenumber=2", "--tls.set=B1"],
        "grid": ["--grid.length=200", "--grid.number=4", "--tls.set=B1,B2,C1,C2"],
        "pair": ["--grid.x-number=2", "--grid.y-number=1", "--grid.x-length=15", "--grid.attach-length=200", "--tls.set=A0,B0"],
    }[kind]
    subprocess.run(
        [os.path.join(sumo.SUMO_HOME, "bin", "netgenerate"), "--grid", "--no-turnarounds", *args, "-o", str(net)],
        check=True,
        capture_output=True,
        env={**os.environ, "SUMO_HOME": sumo.SUMO_HOME},
    )
    flows = "\n".join(
        f'  <flow id="f{i}" from="{a}" to="{b}" begin="0" end="{end_s - 100}" vehsPerHour="{v}" departLane="best"/>'
        for i, (a, b, v) in enumerate(FLOWS[kind])
    )
    (directory / f"{kind}.rou.xml").write_text(f"<routes>\n{flows}\n</routes>\n")
    cfg = directory / f"{kind}.sumocfg"
    cfg.write_text(f"""<configuration>
  <input><net-file value="{net.name}"/><route-files value="{kind}.rou.xml"/></input>
  <time><begin value="0"/><end value="{end_s}"/></time>
</configuration>
""")
    return cfg
