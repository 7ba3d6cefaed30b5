"""Story benchmark: the recap with the day's story for 1,000 and 10,000 replies, cold.

``python -m bench.story [--sizes 1000,10000]`` prints, per size, the seconds from a fresh
interpreter's first import of the recap to the finished recap (:func:`sessions.recap.build_recap`:
story data, themes by meaning, the offline narrative and its grounding check, chart, Markdown,
HTML): nothing is warmed up, so loading the lexicon and compiling the templates are charged. Also
the part spent on the narrative alone, the peak RSS of that process, and the themes found.
Targets (issue 14): under 5 s for 1,000 replies, under 30 s for 10,000, RSS under 500 MB.

The database is filled as the recap benchmark fills it (:func:`bench.recap.fill`), in the parent;
each size is measured in a child process of its own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import peak_rss_mb

SIZES = (1_000, 10_000)


async def _measure(path: Path, session_id: int) -> dict[str, Any]:
    started = time.perf_counter()
    from sessions.recap import build_recap
    from sessions.recap.narrative import gather_narrative
    from sessions.recap.story import gather_story
    from storage.sqlite import SqliteStore

    store = await SqliteStore.open(path)
    try:
        session = await store.get_session(session_id)
        assert session is not None
        recap = await build_recap(store, session)
        cold = time.perf_counter() - started
        story = await gather_story(store, session)
        begun = time.perf_counter()
        narrative = await gather_narrative(store, story)
        narrative_s = time.perf_counter() - begun
    finally:
        await store.close()
    return {
        "replies": narrative.of,
        "cold_s": cold,
        "narrative_s": narrative_s,
        "themes": len(narrative.themes),
        "read": narrative.sampled,
        "words": narrative.draft.words(),
        "article_kb": len(recap.attachments[0].data) / 1024,
        "peak_rss_mb": peak_rss_mb(),
    }


def run(sizes: Sequence[int] = SIZES) -> dict[str, Any]:
    from bench.recap import fill

    results: dict[str, Any] = {"sizes": {}}
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="popup-bench-story-") as tmp:
            path = Path(tmp) / "story.db"
            _, big_id = fill(path, size)
            out = Path(tmp) / "figures.json"
            subprocess.run(
                [sys.executable, "-m", "bench.story", "--measure", str(path), str(big_id), str(out)],
                check=True,
                timeout=600,
            )
            results["sizes"][str(size)] = json.loads(out.read_text(encoding="utf-8"))
    return results


def report(results: dict[str, Any]) -> str:
    lines = [f"{'replies':>8} {'cold s':>7} {'story s':>8} {'RSS MB':>7} {'themes':>7} {'read':>6} {'words':>6}"]
    for f in results["sizes"].values():
        lines.append(
            f"{f['replies']:>8,} {f['cold_s']:>7.2f} {f['narrative_s']:>8.2f} {f['peak_rss_mb']:>7.0f} "
            f"{f['themes']:>7} {f['read']:>6,} {f['words']:>6,}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--measure"]:
        path, session_id, out = argv[1:4]
        result = asyncio.run(_measure(Path(path), int(session_id)))
        Path(out).write_text(json.dumps(result), encoding="utf-8")
        return 0
    sizes: tuple[int, ...] = SIZES
    if "--sizes" in argv:
        sizes = tuple(int(s) for s in argv[argv.index("--sizes") + 1].split(","))
    results = run(sizes)
    print("story: the recap with the day's story, cold (fresh process, nothing warmed up)")
    print(report(results))
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(json.dumps(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
