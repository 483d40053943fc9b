"""The alarm API across several critical workers, and the signals API across several control
workers: each request answered where the book (or the intersection's control state) is.

Kafka's consumer group splits the alarm books (a table keyed by subject) between the critical
workers, and each worker holds only the books of its partitions. Faust's partition assignor
already hands every member the map of which worker (by its advertised URL,
``LEITSTAND_ADVERTISED_URL``, default ``http://WEB_HOST:WEB_PORT``) holds which changelog
partition. So whichever worker an operator's request reaches:

* a change (acknowledge, resolve) of an alarm whose book another worker holds is forwarded to
  that worker, body and ``Authorization`` header included, and its answer returned as it is;
* the listing asks every other worker for the books it holds and merges the answers; a worker
  that does not answer is named in the reply (``unreachable``), never silently left out.

A forwarded request carries :data:`FORWARDED` and is answered from the local books, whatever
the receiving worker's map says: during a rebalance two workers' maps can disagree for a moment,
and a request must not bounce between them.

Trust: the URLs come from the consumer group, so a bearer token is forwarded only to a member of
that group, that is to a process that could already read and write the alarm topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import aiohttp
from faust.web import Request, Response, View

from ..stores import key_partition
from .auth import RAW_BODY

#: marks a request one worker forwarded to another: answered locally, never forwarded again
FORWARDED = "X-Leitstand-Forwarded-By"
#: how long a worker waits for another worker's answer before it reports it unreachable
PEER_TIMEOUT_S = 3.0
#: headers passed on to the owning worker (the token, what the body is, and nothing else)
PASSED_HEADERS = ("Authorization", "Content-Type")
SEVERITY_ORDER = ("critical", "major", "minor")

#: the assignor's map: worker URL -> changelog topic -> partitions it holds
Distribution = Mapping[str, Mapping[str, Sequence[int]]]


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka and the Java client) gives ``key``."""
    return key_partition(key, partitions)


def holders(distribution: Distribution, topic: str) -> dict[int, str]:
    """Partition -> URL of the worker that holds it, for one changelog topic."""
    return {p: url for url, topics in distribution.items() for p in topics.get(topic, ())}


def owner_of(key: bytes, distribution: Distribution, topic: str) -> str | None:
    """URL of the worker holding ``key``'s book, or None while the map does not cover every
    partition (a rebalance in progress): then nobody can say where the book is."""
    held = holders(distribution, topic)
    if not held or set(held) != set(range(max(held) + 1)):
        return None
    return held[partition_of(key, len(held))]


def peers(distribution: Distribution, topic: str, own_url: str) -> list[str]:
    """The other workers holding any partition of the topic, in a stable order."""
    return sorted({url for url in holders(distribution, topic).values() if url != own_url})


def merged(parts: Iterable[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Alarm listings of several workers as one: each alarm once (a book that moved while the
    workers were asked can show up twice), sorted by severity, then by the time raised."""
    by_id: dict[str, dict[str, Any]] = {}
    for part in parts:
        for alarm in part:
            by_id.setdefault(str(alarm.get("alarm_id")), dict(alarm))
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return sorted(by_id.values(), key=lambda a: (rank.get(a.get("severity", ""), len(rank)), str(a.get("raised_at", ""))))


def merged_plans(parts: Iterable[Sequence[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Pending-proposal listings of several control workers as one: each plan once (an
    intersection that moved while the workers were asked can show up twice), by intersection
    and decision time, as one worker lists them."""
    by_id: dict[str, dict[str, Any]] = {}
    for part in parts:
        for plan in part:
            by_id.setdefault(str(plan.get("plan_id")), dict(plan))
    return sorted(by_id.values(), key=lambda p: (str(p.get("intersection_id", "")), float(p.get("time_s") or 0.0)))


def is_forwarded(request: Request) -> bool:
    return FORWARDED in request.headers


class Owners:
    """Which worker holds which alarm book, and the HTTP hop to it (the thin shell around the
    functions above: the assignor's map and an aiohttp client)."""

    def __init__(self, app: Any, table: Any) -> None:
        self.app = app
        self.table = table

    @property
    def own_url(self) -> str:
        return str(self.app.conf.canonical_url)

    @property
    def topic(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def distribution(self) -> Distribution:
        try:
            return dict(self.app.assignor.tables_metadata())
        except (AttributeError, KeyError):  # before the first assignment
            return {}

    def owner(self, subject: str) -> str | None:
        """URL of the worker holding ``subject``'s book, or None while nobody can say (before
        the first assignment, or a rebalance in progress)."""
        return owner_of(subject.encode(), self.distribution(), self.topic)

    def others(self) -> list[str]:
        return peers(self.distribution(), self.topic, self.own_url)

    def _session(self) -> aiohttp.ClientSession:
        return self.app.http_client

    def _headers(self, request: Request) -> dict[str, str]:
        headers = {h: request.headers[h] for h in PASSED_HEADERS if h in request.headers}
        headers[FORWARDED] = self.own_url
        return headers

    async def forward(self, view: View, request: Request, url: str, what: str = "this alarm") -> Response:
        """The same request answered by the worker at ``url``; 503 if it does not answer."""
        target = f"{url.rstrip('/')}{request.url.path_qs}"
        try:
            # the view has read the body off the stream already (auth.read_json_object keeps it)
            kept = cast(Mapping[str, Any], request).get(RAW_BODY)  # aiohttp's per-request storage
            body = kept if isinstance(kept, bytes) else await request.read()
            async with self._session().request(
                request.method, target, data=body, headers=self._headers(request), timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            ) as answer:
                text = await answer.text()
                return view.text(text, content_type=answer.content_type, status=answer.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            return view.json(
                {"error": f"the worker holding {what} ({url}) did not answer: {type(exc).__name__}; retry in a few seconds"},
                status=503,
                headers={"Retry-After": "5"},
            )

    async def gather(self, request: Request, key: str = "alerts") -> tuple[list[list[dict[str, Any]]], list[str]]:
        """Every other worker's own listing for the same query (the list under ``key`` in its
        answer): (listings, URLs that did not answer)."""
        urls = self.others()
        answers = await asyncio.gather(*(self._listing(url, request, key) for url in urls))
        return [a for a in answers if a is not None], [u for u, a in zip(urls, answers, strict=True) if a is None]

    async def _listing(self, url: str, request: Request, key: str) -> list[dict[str, Any]] | None:
        target = f"{url.rstrip('/')}{request.url.path_qs}"
        try:
            limit = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
            async with self._session().get(target, headers=self._headers(request), timeout=limit) as answer:
                if answer.status != 200:
                    return None
                body = await answer.json()
                found = body.get(key) if isinstance(body, dict) else None
                return found if isinstance(found, list) else None
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None
