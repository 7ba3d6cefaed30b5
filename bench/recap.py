"""Recap benchmark: the day-end recap plus its article for 100,000 and 1,000,000 replies.

``python -m bench.recap [--sizes 100000,1000000]`` prints, per size: the plain SQL aggregate floor
(replies per prompt + distinct participants, raw sqlite3), the recap + article time
(:func:`sessions.recap.build_recap`: story, chart, Markdown and HTML), their ratio, and the peak
RSS of the process that built it.

How it measures:

* The database is filled fast but through the real schema: :meth:`SqliteStore.open` migrates it
  and creates the session and prompts, then raw sqlite3 ``executemany`` inserts the replies
  (triggers and indexes included). Reaction counts go straight into ``replies.reactions``, the
  column the reaction triggers maintain (70% of replies have none, the rest a long tail).
* Each size is measured in a child process of its own, so peak RSS figures don't mix; the child
  first builds the recap of a tiny session, so one-off costs (imports, loading the chart's fonts,
  template compilation) are not charged to the big one.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SIZES = (100_000, 1_000_000)
PROMPT_SHARES = (0.30, 0.24, 0.16, 0.12, 0.10, 0.08)
WARMUP_REPLIES = 60
_T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 09:00 in Amsterdam

_WORDS = (
    "learning culture team feedback mentor mentoring pairing code review curiosity safety failure "
    "experiment retrospective knowledge sharing documentation onboarding growth time budget manager "
    "trust coaching practice reading group lunch talk demo conference course book podcast question "
    "answer help channel wiki apprenticeship guild community habit reflection goals career skills "
    "workshop hackathon rotation shadowing notes blog newsletter library testing design architecture "
    "incident postmortem blameless openness vulnerability listening asking teaching juniors seniors"
).split()
_FILLER = "the a of and to in is it that we for on with as our be this are at by so".split()


def _fragments(rng: random.Random, count: int) -> list[str]:
    out = []
    for _ in range(count):
        words = []
        for _ in range(rng.randint(3, 14)):
            words.append(rng.choice(_FILLER) if rng.random() < 0.4 else rng.choice(_WORDS))
        out.append(" ".join(words))
    return out


def _rows(session_id: int, prompts: Sequence[tuple[int, float]], size: int, seed: int) -> Iterator[tuple[Any, ...]]:
    """Replies as they would arrive: all prompts' threads interleaved, in time order."""
    rng = random.Random(seed)
    fragments = _fragments(rng, 4000)
    people = max(5, size // 20)
    counts = [int(size * share) for share in PROMPT_SHARES[: len(prompts)]]
    counts[0] += size - sum(counts)
    # Each thread is busiest just after its prompt and trails off over the afternoon.
    streams = [
        [(created, prompt_id) for created in sorted(due + min(rng.expovariate(1 / 2400), 6 * 3600) for _ in range(n))]
        for (prompt_id, due), n in zip(prompts, counts, strict=True)
    ]
    for n, (created, prompt_id) in enumerate(heapq.merge(*streams), start=1):
        author = int(people * rng.random() ** 2)  # a few people write a lot, most write a little
        parts = rng.randint(1, 4)
        text = ". ".join(rng.choice(fragments) for _ in range(parts)).capitalize() + "."
        reactions = 0 if rng.random() < 0.7 else min(80, int(rng.expovariate(0.35)) + 1)
        deleted = created + 60 if rng.random() < 0.01 else None
        yield (
            session_id, prompt_id, "bench", "C1", f"m{session_id}-{n}", f"U{author}", f"Member {author}",
            text, created, deleted, reactions,
        )


async def _create(path: Path, *, title: str, prompts: int) -> tuple[int, list[tuple[int, float]]]:
    from sessions.model import ChannelRef
    from sessions.records import NewPrompt, NewSession, PromptState
    from storage.sqlite import SqliteStore

    store = await SqliteStore.open(path)
    try:
        session = await store.create_session(
            NewSession(
                plan_name="bench",
                title=title,
                intro="A benchmark session: who makes learning culture?",
                timezone="Europe/Amsterdam",
                channel=ChannelRef(platform="bench", channel_id=f"C-{title}"),
                anonymous=False,
                started_by="U0",
                started_at=_T0,
                recap_at=_T0 + timedelta(hours=8),
                prompts=tuple(
                    NewPrompt(text=f"Prompt {i + 1}: what helps people learn at work?", due_at=_T0 + timedelta(hours=i))
                    for i in range(prompts)
                ),
            )
        )
        assert session is not None
        records = await store.prompts(session.id)
        for p in records:
            await store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.POSTED, at=p.due_at)
        return session.id, [(p.id, p.due_at.timestamp()) for p in records]
    finally:
        await store.close()


def fill(path: Path, size: int, *, seed: int = 5) -> tuple[int, int]:
    """A database at ``path`` with a tiny warm-up session and one of ``size`` replies: their ids."""
    warm_id, warm_prompts = asyncio.run(_create(path, title="warm-up", prompts=3))
    big_id, big_prompts = asyncio.run(_create(path, title="big", prompts=len(PROMPT_SHARES)))
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous = OFF")
        db.execute("BEGIN")
        sql = (
            "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
            "author_name, text, created_at, deleted_at, reactions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        db.executemany(sql, _rows(warm_id, warm_prompts, WARMUP_REPLIES, seed + 1))
        db.executemany(sql, _rows(big_id, big_prompts, size, seed))
        db.execute("COMMIT")
        db.execute("ANALYZE")
    finally:
        db.close()
    return warm_id, big_id


def floor_seconds(path: Path, session_id: int, repeat: int = 3) -> float:
    """The plain SQL aggregate floor: replies per prompt and distinct participants."""
    db = sqlite3.connect(path)
    try:
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            db.execute(
                "SELECT prompt_id, count(*) FROM replies WHERE session_id = ? AND deleted_at IS NULL "
                "GROUP BY prompt_id",
                (session_id,),
            ).fetchall()
            db.execute(
                "SELECT count(*) FROM (SELECT DISTINCT platform, author_id FROM replies "
                "WHERE session_id = ? AND deleted_at IS NULL)",
                (session_id,),
            ).fetchone()
            best = min(best, time.perf_counter() - start)
        return best
    finally:
        db.close()


async def _measure(path: Path, warm_id: int, big_id: int) -> dict[str, Any]:
    from sessions.recap import build_recap
    from sessions.recap.story import gather_story
    from sessions.recap.summary import render_artifacts
    from storage.sqlite import SqliteStore

    store = await SqliteStore.open(path)
    try:
        warm = await store.get_session(warm_id)
        big = await store.get_session(big_id)
        assert warm is not None
        assert big is not None
        await build_recap(store, warm)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        recap = await build_recap(store, big)
        total = time.perf_counter() - start
        # The same work split in two, to show where the time goes.
        start = time.perf_counter()
        story = await gather_story(store, big)
        gather = time.perf_counter() - start
        start = time.perf_counter()
        render_artifacts(story, chart_ref="chart.png")
        render = time.perf_counter() - start
        return {
            "replies": story.replies,
            "participants": story.participants,
            "recap_s": total,
            "gather_s": gather,
            "render_s": render,
            "article_replies": sum(len(p.shown) for p in story.prompts),
            "attachment_bytes": sum(len(a.data) for a in recap.attachments),
            "theme_sample": story.theme_sample.replies,
            "rss_before_mb": rss_before,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    finally:
        await store.close()


def _child(size: int, out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="popup-bench-recap-") as tmp:
        path = Path(tmp) / "recap.db"
        start = time.perf_counter()
        warm_id, big_id = fill(path, size)
        filled = time.perf_counter() - start
        # Measured in a grandchild: the fill's own memory must not count towards the peak.
        result_file = Path(tmp) / "measure.json"
        subprocess.run(
            [sys.executable, "-m", "bench.recap", "--measure", str(path), str(warm_id), str(big_id), str(result_file)],
            check=True,
        )
        result = json.loads(result_file.read_text(encoding="utf-8"))
        result["floor_s"] = floor_seconds(path, big_id)
        result["ratio"] = result["recap_s"] / result["floor_s"] if result["floor_s"] else float("inf")
        result["fill_s"] = filled
        result["size"] = size
        out.write_text(json.dumps(result), encoding="utf-8")


def run(sizes: Sequence[int] = SIZES) -> dict[str, Any]:
    """Measure every size, each in its own processes; ``{"sizes": {size: figures}}``."""
    results: dict[str, Any] = {"sizes": {}}
    with tempfile.TemporaryDirectory(prefix="popup-bench-") as tmp:
        for size in sizes:
            out = Path(tmp) / f"{size}.json"
            subprocess.run([sys.executable, "-m", "bench.recap", "--child", str(size), str(out)], check=True)
            results["sizes"][str(size)] = json.loads(out.read_text(encoding="utf-8"))
    return results


def report(results: dict[str, Any]) -> str:
    lines = [
        f"{'replies':>10} {'floor s':>8} {'recap s':>8} {'ratio':>7} {'gather s':>9} {'render s':>9} "
        f"{'RSS MB':>7} {'(before)':>9} {'themes from':>12} {'fill s':>7}"
    ]
    for figures in results["sizes"].values():
        lines.append(
            f"{figures['size']:>10,} {figures['floor_s']:>8.3f} {figures['recap_s']:>8.3f} {figures['ratio']:>6.1f}x "
            f"{figures['gather_s']:>9.3f} {figures['render_s']:>9.3f} {figures['peak_rss_mb']:>7.0f} "
            f"{figures['rss_before_mb']:>9.0f} {figures['theme_sample']:>12,} {figures['fill_s']:>7.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["--measure"]:
        path, warm_id, big_id, out = argv[1:5]
        result = asyncio.run(_measure(Path(path), int(warm_id), int(big_id)))
        Path(out).write_text(json.dumps(result), encoding="utf-8")
        return 0
    if argv[:1] == ["--child"]:
        _child(int(argv[1]), Path(argv[2]))
        return 0
    sizes: tuple[int, ...] = SIZES
    if "--sizes" in argv:
        sizes = tuple(int(s) for s in argv[argv.index("--sizes") + 1].split(","))
    results = run(sizes)
    print("recap + article (build_recap: story, chart, Markdown, HTML) vs the plain SQL aggregate floor")
    print(report(results))
    if "--json" in argv:
        Path(argv[argv.index("--json") + 1]).write_text(json.dumps(results), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
