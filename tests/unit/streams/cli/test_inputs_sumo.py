"""`leitstand sumo eval` on bad scenario files: one line naming the file, before SUMO starts (#11).

The regression tests run the real console script; the fuzzer runs in process and generates
garbage configuration, net and route files (one bad file per example, the others valid) and
checks the outcome is a clean success or one error line, never a traceback, and fast.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.sumo.loop import ScenarioError, check_scenario
from tests.cli_helpers import leitstand, one_clean_line
from tests.fuzzing import budget
from tests.sumo_nets import build
from tests.unit.streams.cli.test_inputs_support import invoke

pytestmark = pytest.mark.slow  # child processes (the CLI) or SUMO runs


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("single", tmp_path_factory.mktemp("single"), end_s=60)


def scenario(
    tmp_path: Path,
    single: Path,
    *,
    net: str | bytes | None = None,
    routes: str | bytes | None = None,
    route_name: str = "single.rou.xml",
    cfg: str | bytes | None = None,
) -> Path:
    """A copy of the valid scenario with one file replaced."""
    d = tmp_path / "sc"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(single.parent, d)
    for name, content in (("single.net.xml", net), (route_name, routes), ("single.sumocfg", cfg)):
        if content is not None:
            p = d / name
            p.write_bytes(content.encode() if isinstance(content, str) else content)
    if route_name != "single.rou.xml":
        text = (d / "single.sumocfg").read_text().replace("single.rou.xml", route_name)
        (d / "single.sumocfg").write_text(text)
    return d / "single.sumocfg"


def test_garbage_net_file_is_one_line_naming_it(tmp_path: Path, single: Path) -> None:
    cfg = scenario(tmp_path, single, net="this is not xml <<<")
    line = one_clean_line(leitstand("sumo", "eval", str(cfg), timeout=60))
    assert "single.net.xml: not a SUMO network" in line


def test_net_without_version_is_one_line(tmp_path: Path, single: Path) -> None:
    cfg = scenario(tmp_path, single, net='<net><edge id="a"/></net>')  # was KeyError: 'version'
    line = one_clean_line(leitstand("sumo", "eval", str(cfg), timeout=60))
    assert "single.net.xml: not a SUMO network" in line and "'version'" in line


def test_missing_route_file_is_one_line_before_sumo_starts(tmp_path: Path, single: Path) -> None:
    cfg = scenario(tmp_path, single, route_name="missing.rou.xml")
    line = one_clean_line(leitstand("sumo", "eval", str(cfg), timeout=60))  # was TraCIException
    assert "its route file" in line and "missing.rou.xml does not exist" in line


def test_malformed_route_file_is_one_line(tmp_path: Path, single: Path) -> None:
    cfg = scenario(tmp_path, single, routes="<routes><vehicle")
    line = one_clean_line(leitstand("sumo", "eval", str(cfg), timeout=60))
    assert "single.rou.xml: not a well-formed route file" in line


def test_route_sumo_rejects_is_one_line(tmp_path: Path, single: Path) -> None:
    """Well-formed but wrong for this net: only SUMO can tell, and its refusal is one line too."""
    cfg = scenario(tmp_path, single, routes='<routes><vehicle id="v" depart="0"><route edges="nope"/></vehicle></routes>')
    line = one_clean_line(leitstand("sumo", "eval", str(cfg), timeout=60))
    assert "SUMO cannot load the scenario" in line and "'nope'" in line


@pytest.mark.parametrize(
    "cfg, message",
    [
        (
            "<configuration><input><net-file value='single.net.xml'/></input><time><end value='soon'/></time></configuration>",
            "end 'soon' is not a number",
        ),
        (
            "<configuration><input><net-file value='single.net.xml'/></input><time><begin value='60'/><end value='30'/>"
            "</time></configuration>",
            "is not after begin",
        ),
        (
            "<configuration><input><net-file value='single.net.xml'/></input><time><end value='nan'/></time></configuration>",
            "not a finite number",
        ),
        (b"\xff\xfe\x00garbage", "not a SUMO configuration"),
    ],
)
def test_bad_configuration_values_are_scenario_errors(tmp_path: Path, single: Path, cfg: str | bytes, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        check_scenario(scenario(tmp_path, single, cfg=cfg))


def test_valid_scenario_passes_the_check(tmp_path: Path, single: Path) -> None:
    sc = check_scenario(single)
    assert sc.routes == (single.parent / "single.rou.xml",) and sc.end_s == 60


# --- fuzzing --------------------------------------------------------------------------------

XML_NAMES = st.sampled_from(
    [
        "net",
        "edge",
        "lane",
        "junction",
        "tlLogic",
        "phase",
        "connection",
        "location",
        "routes",
        "vehicle",
        "route",
        "flow",
        "trip",
        "vType",
        "configuration",
        "input",
        "net-file",
        "route-files",
        "additional-files",
        "time",
        "begin",
        "end",
        "x",
    ]
)
ATTR_NAMES = st.sampled_from(
    [
        "id",
        "version",
        "from",
        "to",
        "edges",
        "depart",
        "begin",
        "end",
        "value",
        "state",
        "duration",
        "shape",
        "length",
        "speed",
        "index",
        "type",
        "programID",
        "offset",
        "linkIndex",
        "tl",
        "dir",
        "vehsPerHour",
        "route",
    ]
)
ATTR_VALUES = st.one_of(
    st.sampled_from(
        ["", "0", "-1", "1e308", "nan", "inf", "GGrr", "A1B1", "single.net.xml", "single.rou.xml", "missing.xml", "a,b", "1.20", "0,0 1,1"]
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)


@st.composite
def xml_tree(draw: st.DrawFn, depth: int = 3) -> str:
    tag = draw(XML_NAMES)
    attrs = draw(st.dictionaries(ATTR_NAMES, ATTR_VALUES, max_size=4))
    from xml.sax.saxutils import quoteattr

    head = tag + "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    children = draw(st.lists(xml_tree(depth - 1), max_size=3)) if depth > 0 else []
    return f"<{head}>{''.join(children)}</{tag}>" if children else f"<{head}/>"


GARBAGE = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    xml_tree(),
    # a valid file cut short or with a byte flipped (filled in by the test from the real file)
    st.tuples(st.sampled_from(["cut", "flip"]), st.integers(0, 10**6)),
)


def mutate(original: bytes, how: object) -> bytes:
    if isinstance(how, tuple):
        kind, at = how
        at %= max(1, len(original))
        return original[:at] if kind == "cut" else original[:at] + bytes([original[at] ^ 0x55]) + original[at + 1 :]
    return how.encode() if isinstance(how, str) else how  # type: ignore[return-value]


@pytest.mark.fuzz
def test_fuzz_sumo_eval_bad_files_fail_fast_in_one_line(tmp_path_factory: pytest.TempPathFactory, single: Path) -> None:
    """Any one garbage file: success or one line, and a bad net or config never reaches SUMO."""
    tmp = tmp_path_factory.mktemp("fuzz-sumo")

    @budget(25)
    @given(which=st.sampled_from(["single.sumocfg", "single.net.xml", "single.rou.xml"]), garbage=GARBAGE)
    def check(which: str, garbage: object) -> None:
        d = tmp / "sc"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(single.parent, d)
        (d / which).write_bytes(mutate((single.parent / which).read_bytes(), garbage))
        began = time.monotonic()
        code, text = invoke("sumo", "eval", str(d / "single.sumocfg"), "--json")
        took = time.monotonic() - began
        if which != "single.rou.xml" and code != 0:
            assert took < 10, f"{which}: failed after {took:.1f} s, not before SUMO started: {text}"
        assert code == 0 or text.startswith("error: "), text

    check()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--failed-detectors", "1.5"), "--failed-detectors"),
        (("--failed-detectors", "-0.1"), "--failed-detectors"),
        (("--tsp", "on", "--breakdown"), "apply to a controller's run, not to --tsp"),
        (("--tsp", "on", "--failed-detectors", "0.1"), "apply to a controller's run, not to --tsp"),
    ],
)
def test_breakdown_and_failed_detector_options_refuse_nonsense_in_one_line(single: Path, args: tuple[str, ...], message: str) -> None:
    code, line = invoke("sumo", "eval", str(single), *args)
    assert code != 0 and message in line, line
