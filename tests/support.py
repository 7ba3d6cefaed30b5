"""Helpers shared by the engine, store and CLI tests."""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sessions.engine import Engine, EngineSettings
from sessions.model import ChannelRef, Member, Message, MessageRef, Posted, ThreadRef
from sessions.plans import Plan, PromptSpec, parse_time
from sessions.wakeups import Clock, Wakeups, WakeupScheduler, utc_now
from storage.sqlite import SqliteStore


def offset_plan(
    name: str = "p", prompts: tuple[str, ...] = ("+0s", "+1s"), recap: str = "+2s", **extra: object
) -> Plan:
    return Plan(
        name=name,
        title=f"Plan {name}",
        intro="An intro.",
        recap_at=parse_time(recap),
        prompts=tuple(PromptSpec(at=parse_time(at), text=f"Prompt {i + 1} of {name}?") for i, at in enumerate(prompts)),
        **extra,  # type: ignore[arg-type]
    )


def member(user_id: str, name: str | None = None, *, platform: str = "fake", **extra: object) -> Member:
    return Member(platform=platform, user_id=user_id, display_name=name or user_id.title(), **extra)  # type: ignore[arg-type]


@dataclass
class RecordingPort:
    """A platform-faithful enough fake for engine tests: remembers posts, can fail on demand.

    ``fail_next`` makes the next N post calls raise *after* the platform "received" them when
    ``lose_response`` is set (the post exists; only the answer was lost), or before otherwise.
    """

    platform: str = "fake"
    posts: list[tuple[ChannelRef, Message, str]] = field(default_factory=list)
    fail_next: int = 0
    lose_response: bool = False
    find_calls: int = 0
    _by_key: dict[str, Posted] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    posted_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return self._post(channel, content, key, thread=False)

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return self._post(channel, content, key, thread=True)

    def _post(self, channel: ChannelRef, content: Message, key: str, *, thread: bool) -> Posted:
        if self.fail_next and not self.lose_response:
            self.fail_next -= 1
            raise ConnectionError("platform unavailable")
        message_id = str(next(self._ids))
        posted = Posted(
            message=MessageRef(channel=channel, message_id=message_id),
            thread=ThreadRef(channel=channel, thread_id=f"th{message_id}") if thread else None,
        )
        self.posts.append((channel, content, key))
        self._by_key[key] = posted
        self.posted_event.set()
        if self.fail_next:
            self.fail_next -= 1
            raise TimeoutError("the response was lost")
        return posted

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        self.find_calls += 1
        return self._by_key.get(key)

    def titles(self) -> list[str]:
        return [content.title for _, content, _ in self.posts]

    def sent(self) -> list[str]:
        """The engine's post keys ("opening", "prompt:2", "recap"), in posting order."""
        return [marker.split(":", 3)[3] for _, _, marker in self.posts]

    def thread_of(self, position: int) -> ThreadRef:
        for _, _, key in self.posts:
            if key.endswith(f"prompt:{position}"):
                posted = self._by_key[key]
                assert posted.thread is not None
                return posted.thread
        raise AssertionError(f"prompt {position} was not posted")


@dataclass
class Rig:
    store: SqliteStore
    port: RecordingPort
    engine: Engine
    channel: ChannelRef
    clock: Clock = utc_now  # the engine's; the time stamped on the events a rig makes
    closed: bool = False

    async def command(self, name: str, *args: str, who: Member | None = None) -> str:
        from sessions.model import CommandInvoked

        reply = await self.engine.on_command(
            CommandInvoked(
                channel=self.channel,
                member=who or member("org", is_admin=True),
                name=name,
                args=args,
                at=self.clock(),
            )
        )
        return reply.text

    async def posted(self, key: str) -> None:
        await eventually(lambda: key in self.port.sent(), what=f"the {key} post")

    async def reply(self, position: int, text: str, who: Member, message_id: str) -> MessageRef:
        from sessions.model import ReplyPosted

        thread = self.port.thread_of(position)
        message = MessageRef(channel=self.channel, message_id=message_id)
        await self.engine.on_event(ReplyPosted(thread=thread, message=message, author=who, text=text, at=self.clock()))
        return message

    async def close(self) -> None:
        """The bot goes away (at once if it is already gone); its database file stays."""
        if not self.closed:
            self.closed = True
            await self.engine.stop()
            await self.store.close()


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], within: float = 10.0, what: str = "the condition"
) -> None:
    """Wait until ``predicate()`` holds (it may be a coroutine function); fail after ``within`` seconds.

    The one way the suite waits for something to happen: on a stored row, a posted message, a log
    line. ``within`` is a ceiling for a machine under load, not a speed the test measures.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        held = predicate()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}")
        await asyncio.sleep(0.01)




async def make_rig(
    db_path: object,
    plans: list[Plan],
    *,
    port: RecordingPort | None = None,
    clock: Clock = utc_now,
    wakeups: WakeupScheduler | None = None,
    **settings: object,
) -> Rig:
    """A started engine on a real SQLite file and a :class:`RecordingPort`; real time unless told."""
    store = await SqliteStore.open(db_path)  # type: ignore[arg-type]
    port = port or RecordingPort()
    engine_settings = EngineSettings(**{"default_plan": plans[0].name, "retry_delays": (0.05,), **settings})  # type: ignore[arg-type]
    engine = Engine(
        store=store,
        ports={port.platform: port},
        plans=plans,
        settings=engine_settings,
        wakeups=wakeups or Wakeups(),
        clock=clock,
    )
    await engine.start()
    return Rig(
        store=store, port=port, engine=engine, channel=ChannelRef(platform=port.platform, channel_id="C1"), clock=clock
    )


async def close_rig(rig: Rig) -> None:
    await rig.close()
