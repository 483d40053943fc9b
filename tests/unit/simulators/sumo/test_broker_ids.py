"""Traffic light ids on the broker (simulators/sumo/cosim.py): SUMO names a joined junction after
all its nodes (one of ingolstadt21's has 166 characters), records take at most 64, so the
co-simulation gives such a light a short, stable, unique alias that the worker's decoder takes."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.sumo.cosim import broker_id, for_broker
from streams.records import EntityId, IntersectionConfig
from streams.signal_codec import at
from tests.paths import EXAMPLE_INTERSECTION

pytestmark = pytest.mark.slow  # imports simulators.sumo (tests/unit/test_markers.py); runs no SUMO

LONG = (
    "cluster_306484187_cluster_1200363791_1200363826_1200363834_1200363898_1200363927_1200363938_1200363947_"
    "1200364074_1200364103_1507566554_1507566556_255882157_306484190"
)


class _Keyed(msgspec.Struct):
    id: EntityId


def test_a_usable_id_is_kept_and_a_long_one_gets_a_stable_short_alias() -> None:
    assert broker_id("GS_cluster_357187_359543") == "GS_cluster_357187_359543"
    alias = broker_id(LONG)
    assert len(alias) == 64 and alias.startswith(LONG[:55] + "~") and alias == broker_id(LONG)
    assert broker_id(LONG + "0") != alias  # ids that share their first 55 characters stay apart


@given(st.text(min_size=1, max_size=300))
def test_any_id_becomes_one_the_records_take(tid: str) -> None:
    alias = broker_id(tid)
    assert msgspec.json.decode(msgspec.json.encode({"id": alias}), type=_Keyed).id == alias


def test_the_worker_decodes_the_config_of_a_light_with_a_long_id() -> None:
    """The worker's decoder (the record schema) refused the config as it was; under its alias it
    takes it, and the model names itself alike (the desk checks that)."""
    model = json.loads(EXAMPLE_INTERSECTION.read_text())
    model["id"] = LONG
    cfg = IntersectionConfig(schema_version=1, event_time=at(0.0), intersection_id=LONG, model=model, controller="fixed")
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(msgspec.json.encode(cfg), type=IntersectionConfig)
    sent = msgspec.json.decode(msgspec.json.encode(for_broker(cfg, broker_id(LONG))), type=IntersectionConfig)
    assert sent.intersection_id == sent.model["id"] == broker_id(LONG)
