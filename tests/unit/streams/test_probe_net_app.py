"""Probe of the network surface: which bind addresses make the worker warn at start-up."""

from __future__ import annotations

import pytest

from streams.app import exposure_warning
from streams.settings import Settings

TOKEN = "k9-Xq2mZ7vR4tL8wN3pB6yH1cF5gJ0dS-long-enough"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_binds_are_quiet(host: str) -> None:
    assert exposure_warning(Settings(_env_file=None, web_host=host)) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.5", "leitstand.example", "[::]"])
def test_other_binds_warn(host: str) -> None:
    warning = exposure_warning(Settings(_env_file=None, web_host=host, api_token=TOKEN))
    assert warning is not None and host in warning and "TLS" in warning
    assert "no API token" not in warning
    bare = exposure_warning(Settings(_env_file=None, web_host=host))
    assert bare is not None and "no API token is set" in bare
