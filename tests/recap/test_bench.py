"""The recap benchmark runs end to end (tiny size: its figures are not checked here)."""

from __future__ import annotations

from bench import recap as bench_recap


def test_bench_runs_small() -> None:
    results = bench_recap.run(sizes=(1_500,))
    figures = results["sizes"]["1500"]
    assert 1_400 < figures["replies"] <= 1_500  # about 1% are deleted
    assert figures["recap_s"] > 0
    assert figures["floor_s"] > 0
    assert figures["peak_rss_mb"] > 0
    assert "1,500" in bench_recap.report(results)
