"""bench/web.py end to end at a tiny size, so it cannot rot unnoticed (no timing asserted)."""

from __future__ import annotations

import pytest

from bench import __main__ as suite
from bench import web

pytestmark = pytest.mark.slow


def test_the_web_bench_at_tiny_size() -> None:
    result = web.run(clients=8, gets=2, think=0.01, rate=40, seconds=0.25, live=6, seed=3)
    assert result["gets"] == 16
    assert result["posts"] == 10
    assert result["fan_out_s"] > 0
    assert result["rss_mb"] > 0
    assert "web: page GET p99" in web.report(result)
    assert suite.summary({"web": result}).startswith("bench: web GET p99 ")
