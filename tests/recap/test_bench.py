"""The recap benchmark runs end to end (tiny size: its figures are not checked here)."""

from __future__ import annotations

from bench import recap as bench_recap
from bench import story as bench_story


def test_bench_runs_small() -> None:
    results = bench_recap.run(sizes=(1_500,))
    figures = results["sizes"]["1500"]
    assert 1_400 < figures["replies"] <= 1_500  # about 1% are deleted
    assert figures["recap_s"] > 0
    assert figures["floor_s"] > 0
    assert figures["peak_rss_mb"] > 0
    assert "1,500" in bench_recap.report(results)


def test_story_bench_runs_small() -> None:
    results = bench_story.run(sizes=(300,))
    figures = results["sizes"]["300"]
    assert 280 < figures["replies"] <= 300
    assert figures["cold_s"] > 0
    assert figures["words"] > 0
    assert figures["peak_rss_mb"] > 0
    assert "story" in bench_story.report(results)
    from bench.__main__ import summary

    assert summary({"story": results}).startswith("bench: story cold 300 ")
