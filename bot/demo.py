"""``popup demo``: a whole popup session, compressed into seconds, on the console adapter.

Simulated members reply in each prompt's thread, one edits, one deletes, others react; then the
engine posts the recap and the artifacts are written. Everything goes through the real engine,
store and console adapter, exactly as with ``popup run``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.console import ConsoleAdapter
from sessions.engine import Engine, EngineSettings
from sessions.model import Member, MessageRef, ThreadRef
from sessions.plans import Plan, PromptSpec, parse_time
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore

_log = logging.getLogger(__name__)

DEMO_PLAN = Plan(
    name="demo",
    title="Popup learning: who makes learning culture?",
    intro=(
        "Today we ask who makes the learning culture of a team: the people, the habits, the places. "
        "Three prompts through the day; answer in their threads whenever it suits you."
    ),
    prompts=(
        PromptSpec(at=parse_time("+1s"), text="What did you learn from a colleague this month?"),
        PromptSpec(at=parse_time("+5s"), text="Where does learning get stuck in our team?"),
        PromptSpec(at=parse_time("+9s"), text="One small habit that would make learning easier here?"),
    ),
    recap_at=parse_time("+13s"),
)


@dataclass(frozen=True, slots=True)
class _Line:
    who: str
    text: str
    delay: float


MEMBERS = {
    "ada": "Ada",
    "bongani": "Bongani",
    "chen": "Chen Wei",
    "dalia": "داليا",
    "emil": "Emil",
    "fatima": "Fatima 🌻",
}

SCRIPT: tuple[tuple[_Line, ...], ...] = (
    (
        _Line("ada", "Pair-debugging with Emil taught me to read stack traces bottom-up 🙌", 0.3),
        _Line("bongani", "How to write a good incident review: blameless, specific, short.", 0.7),
        _Line("chen", "That a 10-minute demo on Friday spreads more knowledge than a wiki page.", 1.1),
        _Line("dalia", "Chen showed me the profiler: measure first, then optimise.", 1.6),
        _Line("fatima", "Asking 'what would you try next?' instead of giving the answer.", 2.2),
    ),
    (
        _Line("emil", "When nobody has time to review, people stop asking questions.", 0.4),
        _Line("ada", "Docs live in five places, so nobody trusts any of them.", 0.9),
        _Line("bongani", "oops, wrong thread", 1.2),
        _Line("chen", "Meetings eat the slack we need for learning; learning needs unhurried time.", 1.8),
        _Line("fatima", "New people are afraid to look slow; psychological safety matters.", 2.4),
    ),
    (
        _Line("dalia", "A weekly 'today I learned' thread, two lines each.", 0.3),
        _Line("bongani", "Reserve Friday afternoons for learning time, protected from meetings.", 0.8),
        _Line("emil", "Pair on every review for new people during their first month.", 1.3),
        _Line("ada", "One place for docs, with an owner per page.", 1.9),
        _Line("chen", "Celebrate questions: a 'best question of the week' shout-out.", 2.3),
    ),
)


def _demo_timezone() -> str:
    zone = os.environ.get("TZ", "")
    try:
        return zone if zone and ZoneInfo(zone) else "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


class _Crowd:
    """The simulated members: each new prompt thread sets off its part of the script."""

    def __init__(self, console: ConsoleAdapter, seed: int = 7) -> None:
        self._console = console
        self._random = random.Random(seed)
        self._members = {
            uid: Member(platform="console", user_id=uid, display_name=name) for uid, name in MEMBERS.items()
        }
        self._prompt = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def on_thread(self, thread: ThreadRef) -> None:
        if self._prompt < len(SCRIPT):
            script = SCRIPT[self._prompt]
            self.tasks.append(asyncio.create_task(self._play(self._prompt, script)))
            self._prompt += 1

    async def _play(self, index: int, script: tuple[_Line, ...]) -> None:
        posted: list[tuple[_Line, MessageRef]] = []
        elapsed = 0.0
        for line in script:
            await asyncio.sleep(max(0.0, line.delay - elapsed))
            elapsed = line.delay
            message = await self._console.say(line.text, self._members[line.who])
            if message is not None:
                posted.append((line, message))
        if index == 0:  # someone sharpens their answer
            line, message = posted[2]
            await self._console.edit(
                message, line.text + " (edit: and Q&A after it doubles that)", self._members[line.who]
            )
        if index == 1:  # someone takes back a misplaced reply
            line, message = next(item for item in posted if item[0].text == "oops, wrong thread")
            await self._console.delete(message, self._members[line.who])
        # Reactions: every member likes a few replies, favouring the substantial ones.
        for member in self._members.values():
            for line, message in self._random.sample(posted, k=2):
                if line.who != member.user_id:
                    await self._console.react(message, member, self._random.choice(["👍", "❤️", "💡"]))


async def run_demo(out_dir: Path, *, stream: TextIO | None = None) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / "popup-demo.db"
    for stale in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        stale.unlink(missing_ok=True)
    stream = stream or sys.stdout
    store = await SqliteStore.open(db_path)
    console = ConsoleAdapter(out=stream)
    crowd = _Crowd(console)
    console.on_thread = crowd.on_thread
    organiser = Member(platform="console", user_id="organiser", display_name="Organiser", is_admin=True)
    engine = Engine(
        store=store,
        ports={"console": console},
        plans=[DEMO_PLAN],
        settings=EngineSettings(default_plan=DEMO_PLAN.name, timezone=_demo_timezone()),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    try:
        await console.start(engine)
        await engine.start()
        print("$ /popup start demo", file=stream)
        await console.command("/popup start demo", organiser)
        session = await store.active_session(console.channel)
        assert session is not None, "the demo session did not start"
        await engine.wait_closed(session.id)
        await asyncio.gather(*crowd.tasks)
        written = await _write_artifacts(store, session.id, out_dir)
        print(f"\nArtifacts of session #{session.id} in {out_dir}/: " + ", ".join(p.name for p in written), file=stream)
        popup = Path(sys.executable).parent / "popup"  # the venv's script, wherever the venv is
        print(f"Try: {popup} export {session.id} --format html --db {db_path}", file=stream)
    finally:
        await console.stop()
        await engine.stop()
        await store.close()
    return 0


async def _write_artifacts(store: SqliteStore, session_id: int, out_dir: Path) -> list[Path]:
    from sessions.recap.exports import write_artifacts

    session = await store.get_session(session_id)
    assert session is not None
    return await write_artifacts(store, session, out_dir)
