"""Faust's aiokafka transport with a configurable fetch wait (life-safety latency).

faust-streaming hard-codes ``fetch_max_wait_ms=1500`` for the worker's consumer. Apache Kafka
answers a waiting fetch as soon as data arrives, so the value only matters when topics are idle;
Tansu 0.6 holds a fetch for the full wait (measured: a camera alarm took 1.3 s median through
the default worker on Tansu, 65 ms on Kafka). We shorten the wait to
``LEITSTAND_CONSUMER_FETCH_MAX_WAIT_MS`` (default 100 ms): an idle worker then polls ten times a
second, which costs nothing worth measuring on loopback and bounds each hop's wait.

The override sets aiokafka's ``_fetch_max_wait_ms`` before the consumer starts (the fetcher is
built in ``start()``); aiokafka is pinned in requirements.lock and a unit test checks the value
arrives in the fetcher, so an upgrade that moves it fails loudly rather than silently.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = int(self.app.conf.leitstand.consumer_fetch_max_wait_ms)
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class LeitstandApp(faust.App):
    """A Faust app whose consumer uses ``_Transport`` (see the module docstring)."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
