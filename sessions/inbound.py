"""Replies, edits, deletions and reactions in: each stored once, durable before the adapter acks."""

from __future__ import annotations

from sessions.model import MessageEvent, ReactionChanged, ReplyDeleted, ReplyEdited, ReplyPosted, ThreadRef
from sessions.records import NewReply, SessionState, ThreadTarget
from sessions.store import Store
from sessions.threads import ThreadIndex

# Replies in the threads of a session that ended without a recap are not kept.
_IGNORED_SESSION_STATES = (SessionState.CANCELLED, SessionState.FAILED)


class Inbound:
    def __init__(self, *, store: Store, threads: ThreadIndex) -> None:
        self._store = store
        self._threads = threads

    async def on_event(self, event: MessageEvent) -> None:
        """Store ``event``; returns once it is durable, or known to be none of ours."""
        store = self._store
        match event:
            case ReplyPosted():
                if event.author.is_bot:
                    return
                target = await self._target(event.thread)
                if target is None:
                    return
                await store.add_reply(
                    NewReply(
                        session_id=target.session_id,
                        prompt_id=target.prompt_id,
                        platform=event.message.channel.platform,
                        channel_id=event.message.channel.channel_id,
                        message_id=event.message.message_id,
                        author_id=event.author.user_id,
                        author_name=event.author.display_name,
                        text=event.text,
                        created_at=event.at,
                        delivery_id=event.delivery_id,
                    )
                )
            case ReplyEdited():
                in_prompt_thread = event.thread is not None and await self._target(event.thread) is not None
                await store.edit_reply(
                    event.message,
                    event.text,
                    at=event.at,
                    keep_if_unknown=in_prompt_thread,
                    delivery_id=event.delivery_id,
                )
            case ReplyDeleted():
                await store.delete_reply(event.message, at=event.at, delivery_id=event.delivery_id)
            case ReactionChanged():
                await store.set_reaction(
                    event.message,
                    event.user_id,
                    event.emoji,
                    added=event.added,
                    at=event.at,
                    delivery_id=event.delivery_id,
                )

    async def _target(self, thread: ThreadRef) -> ThreadTarget | None:
        target = await self._threads.find(thread)
        if target is None or target.session_state in _IGNORED_SESSION_STATES:
            return None
        return target
