"""Replies, edits, deletions and reactions in: each stored once, durable before the adapter acks."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping

from sessions.errors import NotStored
from sessions.model import MessageEvent, ReactionChanged, ReplyDeleted, ReplyEdited, ReplyPosted, ThreadRef
from sessions.ports import Backfills, ChatPort
from sessions.records import NewReply, SessionRecord, SessionState, ThreadTarget
from sessions.store import Store
from sessions.threads import ThreadIndex

_log = logging.getLogger(__name__)

# Replies in the threads of a session that ended without a recap are not kept.
_IGNORED_SESSION_STATES = (SessionState.CANCELLED, SessionState.FAILED)


class Inbound:
    def __init__(self, *, store: Store, threads: ThreadIndex, shared_database: bool = False) -> None:
        """``shared_database``: other processes post for the same sessions (a cluster), so a thread
        this process has not seen may be one another process has opened and not yet recorded."""
        self._store = store
        self._threads = threads
        self._shared_database = shared_database

    async def backfill(self, session: SessionRecord, ports: Mapping[str, ChatPort]) -> None:
        """Ask each platform that can tell (:class:`~sessions.ports.Backfills`) for what was said in
        the session's threads while the bot was away; it comes in through :meth:`on_event`."""
        if not any(isinstance(port, Backfills) for port in ports.values()):
            return  # no platform here can tell what was missed: no need to read the session's posts
        by_platform: defaultdict[str, list[ThreadRef]] = defaultdict(list)
        for post in await self._store.posts(session.id):
            if post.thread is not None:
                by_platform[post.channel.platform].append(post.thread)
        for platform, threads in by_platform.items():
            port = ports.get(platform)
            if isinstance(port, Backfills):
                try:
                    await port.backfill(threads)
                except Exception:  # a platform hiccup must not stop the session from going on
                    _log.exception("session %d: back-filling %s threads failed", session.id, platform)

    async def on_event(self, event: MessageEvent) -> None:
        """Store ``event``; returns once it is durable, or known to be none of ours."""
        store = self._store
        match event:
            case ReplyPosted():
                if event.author.is_bot:
                    return
                target = await self._target(event.thread, event.delivery_id or event.message.message_id)
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
                key = event.delivery_id or event.message.message_id
                in_prompt_thread = event.thread is not None and await self._target(event.thread, key) is not None
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

    async def _target(self, thread: ThreadRef, key: str) -> ThreadTarget | None:
        target = await self._threads.find(thread)
        # Within one process the thread index already waits for the posts under way; only another
        # process's can be unknown here, so a lone process never holds back an unrelated thread's event.
        platform = thread.channel.platform
        if target is None and self._shared_database:
            if await self._store.thread_post_under_way(platform):
                # Perhaps a thread another process has just opened and not yet recorded: taking the
                # event as none of ours would lose it, so have the platform (or adapter) hand it over again.
                _log.info(
                    "%s thread %s unknown while a prompt post is under way: not stored yet",
                    thread.channel.platform,
                    thread.thread_id,
                )
                raise NotStored(key)
            # None under way now: one that was when we looked for the thread has been recorded
            # since (the same statement ends "under way" and records the thread), so look again.
            target = await self._threads.find(thread)
        if target is None or target.session_state in _IGNORED_SESSION_STATES:
            return None
        return target
