"""A day of replies built through the real store, for the recap tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sessions.model import ChannelRef, MessageRef
from sessions.records import NewPrompt, NewReply, NewSession, PromptRecord, PromptState, SessionRecord
from sessions.store import Store
from storage.sqlite import SqliteStore

T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 09:00 in Amsterdam
CHANNEL = ChannelRef(platform="slack", channel_id="C1")


@dataclass
class Day:
    """A session under construction: add replies and reactions, then read it back."""

    store: Store
    session: SessionRecord
    prompts: list[PromptRecord]
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    texts: dict[str, str] = field(default_factory=dict)  # message id -> text

    async def reply(
        self,
        prompt: int,
        text: str,
        *,
        author: str = "U1",
        name: str | None = None,
        minutes: float = 5,
        reactions: int = 0,
    ) -> str:
        """Reply under prompt number ``prompt`` (1-based); the message id."""
        target = self.prompts[prompt - 1]
        message_id = f"{1700000000 + 1000 * self.session.id + next(self._ids)}.000100"
        await self.store.add_reply(
            NewReply(
                session_id=self.session.id,
                prompt_id=target.id,
                platform=CHANNEL.platform,
                channel_id=CHANNEL.channel_id,
                message_id=message_id,
                author_id=author,
                author_name=name if name is not None else f"Name of {author}",
                text=text,
                created_at=target.due_at + timedelta(minutes=minutes),
            )
        )
        for i in range(reactions):
            await self.store.set_reaction(
                MessageRef(channel=CHANNEL, message_id=message_id),
                f"R{i}",
                "+1",
                added=True,
                at=target.due_at + timedelta(minutes=minutes + 1),
            )
        self.texts[message_id] = text
        return message_id

    async def delete(self, message_id: str) -> None:
        await self.store.delete_reply(MessageRef(channel=CHANNEL, message_id=message_id), at=T0 + timedelta(hours=9))
        self.texts.pop(message_id)

    async def fresh(self) -> SessionRecord:
        session = await self.store.get_session(self.session.id)
        assert session is not None
        return session


async def new_day(
    store: Store,
    *,
    prompts: Sequence[str] = ("What helps you learn at work?", "Who taught you the most?", "What will you try?"),
    anonymous: bool = False,
    title: str = "Who makes learning culture?",
    missed: Sequence[int] = (),
    skipped: Sequence[int] = (),
    channel: ChannelRef = CHANNEL,
) -> Day:
    session = await store.create_session(
        NewSession(
            plan_name="learning-culture",
            title=title,
            intro="A day about how we learn.\nAnswer in the threads.",
            timezone="Europe/Amsterdam",
            channel=channel,
            anonymous=anonymous,
            started_by="UORG",
            started_at=T0,
            recap_at=T0 + timedelta(hours=8),
            prompts=tuple(NewPrompt(text=t, due_at=T0 + timedelta(hours=i)) for i, t in enumerate(prompts)),
        )
    )
    assert session is not None
    records = await store.prompts(session.id)
    for p in records:
        if p.position in missed:
            await store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.MISSED)
        elif p.position in skipped:
            await store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.SKIPPED)
        else:
            await store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.POSTED, at=p.due_at)
    return Day(store=store, session=session, prompts=await store.prompts(session.id))


# A small but real day: several people, reactions, a theme that runs through it.
REPLIES: tuple[tuple[int, str, str, int], ...] = (
    (1, "U1", "Pairing with a mentor every week taught me more than any course.", 4),
    (1, "U2", "Code review is where our team learns the most, when it is kind.", 2),
    (1, "U3", "yes yes yes yes yes yes yes yes yes yes yes yes yes yes", 2),
    (1, "U4", "Time to learn on the calendar, and a manager who protects it.", 0),
    (2, "U2", "My first team lead taught me code review as a conversation.", 3),
    (2, "U5", "A mentor who asked questions instead of giving answers.", 1),
    (2, "U1", "Pairing with seniors on real incidents.", 0),
    (3, "U3", "Start a weekly code review club with pairing sessions.", 0),
    (3, "U4", "Ask a mentor for feedback on one pull request a week.", 5),
)


async def sample_day(store: SqliteStore, *, anonymous: bool = False, **extra: object) -> Day:
    day = await new_day(store, anonymous=anonymous, **extra)  # type: ignore[arg-type]
    for i, (prompt, author, text, reactions) in enumerate(REPLIES):
        await day.reply(prompt, text, author=author, name=f"Person {author[1:]}", minutes=3 + i, reactions=reactions)
    return day
