"""Where a GTFS-Realtime feed comes from: a feed URL's credentials are never printed, and a
user:password in the URL is sent as Basic authentication (urllib took it for part of the host name:
every fetch failed with a DNS error that printed the password; a probe of stop 55)."""

from __future__ import annotations

import base64
import http.server
import threading

import pytest

from streams.cli.ingest import feed_request, read_source, shown_source
from streams.errors import CliError


def test_credentials_go_into_a_header_not_the_host() -> None:
    request = feed_request("https://us%40er:p%3Ass@feeds.example:8443/rt?key=1")
    assert request.full_url == "https://feeds.example:8443/rt?key=1"
    assert base64.b64decode(str(request.get_header("Authorization")).split()[1]) == b"us@er:p:ss"
    assert feed_request("https://feeds.example/rt").get_header("Authorization") is None
    assert "s3cret" not in shown_source("http://user:s3cret@h/feed?token=abc") and "abc" not in shown_source("http://h/f?token=abc")
    assert shown_source("/data/feed.pb") == "/data/feed.pb"


def test_a_fetch_sends_them_and_a_failure_does_not_print_them() -> None:
    seen: list[str] = []

    class Feed(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the standard library's name
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"feed")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Feed)
    port = server.server_address[1]
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        assert read_source(f"http://reader:s3cret@127.0.0.1:{port}/rt") == b"feed"
    finally:
        server.server_close()
    assert seen == ["Basic " + base64.b64encode(b"reader:s3cret").decode()]
    with pytest.raises(CliError) as refused:
        read_source(f"http://reader:s3cret@127.0.0.1:{port}/rt?token=t0ken")  # nobody listens any more
    assert "s3cret" not in str(refused.value) and "t0ken" not in str(refused.value) and "cannot fetch" in str(refused.value)
