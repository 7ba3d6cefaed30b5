"""The records the store tests build: a session, a reply, a message ref, on both stores alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sessions.model import ChannelRef, MessageRef
from sessions.records import NewPrompt, NewReply, NewSession
from tests.store_contract.conftest import AnyStore

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CHANNEL = ChannelRef(platform="slack", channel_id="C1")


def new_session(channel: ChannelRef = CHANNEL, prompts: int = 2) -> NewSession:
    return NewSession(
        plan_name="p",
        title="Title",
        intro="Intro",
        timezone="UTC",
        channel=channel,
        anonymous=False,
        started_by="U1",
        started_at=T0,
        recap_at=T0 + timedelta(hours=8),
        prompts=tuple(NewPrompt(text=f"q{i}", due_at=T0 + timedelta(hours=i)) for i in range(prompts)),
    )


def reply(session_id: int, prompt_id: int, message_id: str, text: str = "hi", author: str = "U2") -> NewReply:
    return NewReply(
        session_id=session_id,
        prompt_id=prompt_id,
        platform="slack",
        channel_id="C1",
        message_id=message_id,
        author_id=author,
        author_name=author.lower(),
        text=text,
        created_at=T0 + timedelta(minutes=1),
    )


def ref(message_id: str) -> MessageRef:
    return MessageRef(channel=CHANNEL, message_id=message_id)


async def texts(store: AnyStore, session_id: int) -> list[str]:
    return [r.text async for r in store.iter_replies(session_id)]
