"""The simulator's one line when the broker stays away past LEITSTAND_PRODUCER_OUTAGE_S."""

from __future__ import annotations

from aiokafka.errors import KafkaTimeoutError, NodeNotReadyError

from simulators.producer import gave_up
from streams.broker.probe import BrokerUnreachable


def test_the_line_names_the_setting_and_the_error_once() -> None:
    line = str(gave_up(NodeNotReadyError("NodeNotReadyError: Attempt to send a request to node which is not ready (node id 1).")))
    assert "LEITSTAND_PRODUCER_OUTAGE_S" in line and "\n" not in line
    assert line.count("NodeNotReadyError") == 1
    assert "(KafkaTimeoutError)" in str(gave_up(KafkaTimeoutError()))
    assert isinstance(gave_up(KafkaTimeoutError()), BrokerUnreachable)  # the CLI prints it as one line
