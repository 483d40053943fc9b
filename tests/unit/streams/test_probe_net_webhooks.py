"""Probe of the network surface: IPv6 addresses that carry an IPv4 address are judged by it.

``address_refusal`` unwrapped IPv4-mapped addresses (``::ffff:a9fe:a9fe``) only. The NAT64
forms (``64:ff9b::169.254.169.254``, RFC 6052; the local-use prefix ``64:ff9b:1::/48``, RFC 8215),
6to4 (``2002:a9fe:a9fe::``) and IPv4-compatible (``::169.254.169.254``) forms of the metadata or a
private address were accepted as global https targets, at start-up and at delivery (literal
addresses are connected to without DNS, so only ``check_url`` stands between them and a socket).
On an IPv6-only host behind NAT64 the first reaches the IPv4 address it embeds.
"""

from __future__ import annotations

import pytest

from streams.webhooks import TargetRefused, address_refusal, check_url


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::169.254.169.254",
        "64:ff9b::7f00:1",
        "64:ff9b::c0a8:105",
        "64:ff9b:1::a9fe:a9fe",
        "64:ff9b:1:a9fe:a9:fe00::",
        "2002:a9fe:a9fe::1",
        "2002:7f00:1::",
        "2002:c0a8:105::1",
        "::a9fe:a9fe",
        "::169.254.169.254",
        "::7f00:1",
        "::c0a8:105",
    ],
)
def test_embedded_ipv4_addresses_are_judged_by_the_ipv4_address(address: str) -> None:
    assert address_refusal(address, allowed=False), address
    with pytest.raises(TargetRefused):
        check_url(f"https://[{address}]/hook")


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::a9fe:a9fe"])
def test_embedded_metadata_is_refused_even_for_an_allowed_host(address: str) -> None:
    assert address_refusal(address, allowed=True), address
    with pytest.raises(TargetRefused):
        check_url(f"https://[{address}]/hook", allowed_hosts=[address])


def test_public_addresses_still_pass() -> None:
    for address in ("2606:4700:4700::1111", "93.184.216.34", "64:ff9b::5db8:d822"):  # NAT64 of a public one
        assert address_refusal(address, allowed=False) is None, address


@pytest.mark.parametrize(
    "host", ["2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.169.254.", "169.254.43518", "0", "0x7f.1", "127.1", "10.1"]
)
def test_legacy_ipv4_forms_are_refused_at_start_up(host: str) -> None:
    """The resolver reads these as 169.254.169.254, 0.0.0.0, 127.0.0.1 and 10.0.0.1: they were
    accepted by the settings and then refused at every delivery (alarms reached nobody)."""
    with pytest.raises(TargetRefused):
        check_url(f"https://{host}/hook")


def test_names_that_look_hexadecimal_are_still_names() -> None:
    for host in ("cafe.example", "deadbeef.de", "face.b00c"):
        check_url(f"https://{host}/hook")  # resolved and checked at delivery


def test_a_receivers_error_never_brings_the_urls_token_into_the_attempt() -> None:
    """A receiver answering with a header over aiohttp's 8 KB limit made aiohttp quote the URL
    normalised (userinfo dropped, ``%73`` decoded), which the exact-URL scrub missed: the query's
    token reached ``alerts.deliveries`` and the log (stop 54's probe)."""
    import asyncio

    from streams.webhooks import post, session

    async def main() -> str:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 20_000 + b"\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://user:pa%73s@127.0.0.1:{port}/hook?token=SECRETTOKEN"
        try:
            async with session(["127.0.0.1"]) as client:
                attempt = await post(client, "d1", url, b"{}", "s" * 32, timeout_s=5, allowed_hosts=["127.0.0.1"])
        finally:
            server.close()
        assert not attempt.ok
        return attempt.detail

    detail = asyncio.run(main())
    assert "SECRETTOKEN" not in detail and "pass" not in detail and "hook" not in detail, detail
