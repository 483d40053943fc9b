"""Webhook delivery: signed JSON POSTs with exponential backoff, planned as plain data.

The plan (who gets what, when to retry) is pure and tested on its own; ``post`` is the only
part that touches the network.

Signing follows the Standard Webhooks scheme (https://www.standardwebhooks.com), so receivers
can use its libraries: headers ``webhook-id`` (the delivery id, the same for every retry:
de-duplicate on it, delivery is at-least-once), ``webhook-timestamp`` (integer Unix seconds of
this attempt) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.
The id and timestamp are inside the MAC, so a captured delivery replayed later (or with a new
timestamp) fails ``verify``, which accepts timestamps within ``tolerance_s`` of the receiver's
clock.

Where deliveries may go is checked twice: ``check_url`` when the settings are loaded (https
only, plus hosts listed in ``LEITSTAND_WEBHOOK_ALLOWED_HOSTS``) and again at delivery on the
addresses the host name resolves to (``GuardedResolver``), so a name that later points at a
private, loopback or cloud-metadata address is refused. Redirects are never followed: they
would carry the body and signature to a place nobody configured. Logs and records name the
target's origin and a short id only; a URL may carry credentials in its userinfo, path or query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
import socket
import time
from collections.abc import Collection, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

MAX_BACKOFF_S = 300.0
NOTIFY_TRANSITIONS = ("raised", "reraised", "escalated")
DEFAULT_TOLERANCE_S = 300.0
SECRET_PREFIX = "whsec_"  # Standard Webhooks secrets: whsec_<base64 key>

# addresses refused even for an explicitly allowed host: cloud metadata services hand out
# credentials to whoever asks from inside the machine
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254", "192.0.0.192")
)
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"})


class TargetRefused(ValueError):
    """A webhook URL or address that deliveries must not go to (never retried)."""


class Attempt(NamedTuple):
    """Outcome of one POST: ``retry`` is False when trying again cannot help."""

    ok: bool
    detail: str
    retry: bool = True


# --- signing (Standard Webhooks) ----------------------------------------------------------


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key: a ``whsec_<base64>`` secret is decoded as Standard Webhooks does, any
    other string is used as its UTF-8 bytes (so existing plain secrets keep working)."""
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a whsec_ secret must be followed by base64") from exc
    return secret.encode()


def signature(secret: str | bytes, delivery_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` over ``{id}.{timestamp}.{body}``: the id and time are signed too."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()


def signed_headers(secret: str | bytes | None, delivery_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt (no signature without a secret)."""
    headers = {"webhook-id": delivery_id, "webhook-timestamp": str(timestamp)}
    if secret:
        headers["webhook-signature"] = signature(secret, delivery_id, timestamp, body)
    return headers


def verification_error(
    secret: str | bytes, headers: Mapping[str, str], body: bytes, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S
) -> str | None:
    """Why a delivery fails verification, or None when it is authentic and fresh."""
    h = {k.lower(): v for k, v in headers.items()}
    did, ts, sigs = h.get("webhook-id"), h.get("webhook-timestamp"), h.get("webhook-signature")
    if not did or not ts or not sigs:
        return "missing webhook-id, webhook-timestamp or webhook-signature header"
    try:
        timestamp = int(ts)
    except ValueError:
        return "webhook-timestamp is not an integer"
    if abs(now - timestamp) > tolerance_s:
        return f"webhook-timestamp is {now - timestamp:.0f} s away from now (tolerance {tolerance_s:.0f} s)"
    expected = signature(secret, did, timestamp, body)
    # the header may list several space-separated signatures (key rotation)
    if any(hmac.compare_digest(expected.encode(), s.encode()) for s in sigs.split()):
        return None
    return "no matching signature"


def verify(secret: str | bytes, headers: Mapping[str, str], body: bytes, now: float, tolerance_s: float = DEFAULT_TOLERANCE_S) -> bool:
    """What a receiver does: True only for an untampered delivery signed within ``tolerance_s``
    of ``now`` (receivers also drop ``webhook-id`` values they have already seen)."""
    return verification_error(secret, headers, body, now, tolerance_s) is None


# --- where deliveries may go --------------------------------------------------------------


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what logs and records show (no userinfo/path/query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "<unparseable url>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


def target_id(url: str) -> str:
    """A short stable id of a URL, so two URLs on one host can be told apart in the records."""
    return hashlib.blake2b(url.encode(), digest_size=4).hexdigest()


def host_allowed(host: str, allowed_hosts: Collection[str]) -> bool:
    host = host.lower().strip("[]").rstrip(".")
    return any(host == a.lower().strip("[]").rstrip(".") for a in allowed_hosts)


def address_refusal(address: str, allowed: bool) -> str | None:
    """Why a resolved address is refused, or None. Link-local and metadata addresses are
    refused always; loopback, private and other non-global ones unless the host is allowed.
    An IPv6 address embedding an IPv4 one (mapped, NAT64, 6to4, compatible) is judged by it."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64 and not allowed:
            return f"{ip} is a local-use NAT64 address (allow the host in LEITSTAND_WEBHOOK_ALLOWED_HOSTS)"
        ip = _embedded_ipv4(ip) or ip
    if ip in METADATA_ADDRESSES or ip.is_link_local:
        return f"{ip} is a link-local or cloud-metadata address"
    if ip.is_multicast or ip.is_unspecified:
        return f"{ip} is not a unicast address"
    if not ip.is_global and not allowed:
        return f"{ip} is a private, loopback or reserved address (allow the host in LEITSTAND_WEBHOOK_ALLOWED_HOSTS)"
    return None


#: IPv6 forms that carry an IPv4 address a packet may end up at: judged by that address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local use, any layout: non-global
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated ::a.b.c.d (RFC 4291)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, NAT64, 6to4 or IPv4-compatible IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_url(url: str, allowed_hosts: Collection[str] = ()) -> None:
    """Refuse a webhook URL before any DNS: https only (http only for allowed hosts), and no
    literal address or well-known name that points inside the machine or its network."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise TargetRefused(f"{origin(url)}: not a valid URL") from exc
    if parts.scheme not in ("https", "http"):
        raise TargetRefused(f"{parts.scheme or '?'}:// URL: only https:// is allowed")
    if not host:
        raise TargetRefused(f"{parts.scheme}:// URL without a host")
    allowed = host_allowed(host, allowed_hosts)
    if parts.scheme != "https" and not allowed:
        raise TargetRefused(f"{origin(url)}: only https:// is allowed (http:// only for hosts in LEITSTAND_WEBHOOK_ALLOWED_HOSTS)")
    name = host.lower().rstrip(".")
    if name in METADATA_HOSTS:
        raise TargetRefused(f"{origin(url)}: a cloud-metadata host")
    if (name == "localhost" or name.endswith(".localhost")) and not allowed:
        raise TargetRefused(f"{origin(url)}: loopback (allow the host in LEITSTAND_WEBHOOK_ALLOWED_HOSTS)")
    address = _literal_address(host)
    if address is None:
        return  # a name: its addresses are checked when it is resolved, at every delivery
    reason = address_refusal(address, allowed)
    if reason:
        raise TargetRefused(f"{origin(url)}: {reason}")


def _literal_address(host: str) -> str | None:
    """The address a host that is an address denotes, legacy IPv4 forms the resolver reads as
    one included (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``, ``169.254.169.254.``),
    so a target that will be refused at every delivery is refused at start-up already."""
    bare = host.split("%", 1)[0]
    try:
        ipaddress.ip_address(bare)
        return bare
    except ValueError:
        pass
    legacy = host.rstrip(".")
    if legacy and all(c in "0123456789abcdefxABCDEFX." for c in legacy):
        try:
            return socket.inet_ntoa(socket.inet_aton(legacy))
        except OSError:
            return None
    return None


class GuardedResolver(AbstractResolver):
    """DNS for webhook sessions that refuses forbidden addresses on the very answers aiohttp
    connects to, so a name re-pointed after start-up (DNS rebinding) cannot reach inside."""

    def __init__(self, allowed_hosts: Collection[str]) -> None:
        self.allowed_hosts = tuple(allowed_hosts)
        self.inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed = host_allowed(host, self.allowed_hosts)
        for r in results:
            reason = address_refusal(r["host"], allowed)
            if reason:
                raise TargetRefused(f"{host} resolves to {reason}")
        return results

    async def close(self) -> None:
        await self.inner.close()


def session(allowed_hosts: Collection[str] = ()) -> aiohttp.ClientSession:
    """A client session whose connections pass ``GuardedResolver``; no proxy from the
    environment (it would resolve the name on our behalf, past the guard)."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(allowed_hosts))
    return aiohttp.ClientSession(connector=connector, trust_env=False)


# --- planning and delivery ----------------------------------------------------------------


def backoff_s(attempts: int, base_s: float) -> float:
    """Delay before the next attempt after ``attempts`` failures: base, 2 base, 4 base, ..."""
    return min(MAX_BACKOFF_S, base_s * 2 ** max(0, attempts - 1))


def transition_time(alert: Mapping[str, Any]) -> Any:
    """When the transition to deliver happened (escalation time, else the newest occurrence)."""
    if alert.get("transition") == "escalated":
        return alert.get("escalated_at")
    return alert.get("last_occurrence_at") or alert.get("raised_at")


def delivery_id(alert: Mapping[str, Any], level: int, contact: str) -> str:
    """The id of one delivery: alarm, transition, level, when and the contact as configured.

    Deterministic, so a transition read twice (a redelivered ``alerts`` record) plans the same
    ids and the notifier can recognise what it already sent; every channel uses it (for a
    webhook the contact is its URL, so ids planned before e-mail and MQTT existed still match).
    """
    key = f"{alert['alarm_id']}|{alert['transition']}|{level}|{transition_time(alert)}|{contact}"
    return hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


#: a URL inside an exception text, up to a quote, space or bracket
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]]+")


def _scrub(detail: str, url: str) -> str:
    """Exception texts may quote the URL (query and userinfo included): show the origin. Every
    URL in the text, not only the configured one: aiohttp quotes it normalised (userinfo dropped,
    ``%73`` decoded), and that form kept the token in the query (stop 54's probe)."""
    detail = detail.replace(url, origin(url)) if url else detail
    return _URL_IN_TEXT.sub(lambda m: origin(m.group(0)), detail)


async def post(
    client: aiohttp.ClientSession,
    delivery_id: str,
    url: str,
    body: bytes,
    secret: str | bytes | None,
    timeout_s: float,
    allowed_hosts: Collection[str] = (),
    now: float | None = None,
) -> Attempt:
    """One attempt. Any 2xx counts; a redirect is a failure (never followed); a refused target
    is not retried; everything else is. ``client`` should come from ``session`` (the guard)."""
    try:
        check_url(url, allowed_hosts)
    except TargetRefused as exc:
        return Attempt(False, f"refused: {exc}", retry=False)
    timestamp = int(time.time() if now is None else now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "leitstand-notifier",
        **signed_headers(secret, delivery_id, timestamp, body),
    }
    try:
        async with client.post(
            url, data=body, headers=headers, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as resp:
            if 300 <= resp.status < 400:
                where = origin(resp.headers.get("Location", "")) if resp.headers.get("Location") else "nowhere"
                return Attempt(False, f"HTTP {resp.status}: redirect to {where} not followed (redirects are refused)")
            return Attempt(200 <= resp.status < 300, f"HTTP {resp.status}")
    except TargetRefused as exc:  # raised by GuardedResolver after DNS
        return Attempt(False, f"refused: {exc}", retry=False)
    except Exception as exc:  # every failure of a receiver is a retry, never a crash
        return Attempt(False, _scrub(f"{type(exc).__name__}: {exc}", url)[:300])
