"""Broker lifecycle: the embedded Tansu broker and Apache Kafka (KRaft), one interface."""

from .engines import ENGINES, KAFKA_VERSION, start
from .probe import BrokerUnreachable, check_reachable, wait_until_ready
from .process import BrokerError, BrokerInfo, read_info, stop

__all__ = [
    "ENGINES",
    "KAFKA_VERSION",
    "BrokerError",
    "BrokerInfo",
    "BrokerUnreachable",
    "check_reachable",
    "read_info",
    "start",
    "stop",
    "wait_until_ready",
]
