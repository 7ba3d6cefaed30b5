"""What the web side keeps (:class:`sessions.web.WebStore`), on PostgreSQL: the pages' posts, sign-in
links, plans made in the dashboard and the article's versions (migration 0005, as the SQLite store's
0006), and the reads of replies that the pages and the dashboard show.

A mixin of :class:`storage.postgres.PostgresStore`: every statement is atomic on its own (or a short
transaction), whichever process runs it, and reads go to the store's pool. The article's markdown
quotes members' words, so it travels as UTF-8 bytes (bytea), as the replies' text does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sessions.records import ReplyRecord
from sessions.web import ArticleVersion, ChannelCount, StoredPlan, WebPost
from storage.postgres.recap_queries import STANDING
from storage.postgres.rows import REPLY_COLUMNS, as_reply, dt, ts

_POST_COLUMNS = "id, channel_id, key, thread_id, content, posted_at"
_VERSION_COLUMNS = "id, session_id, markdown, saved_by, saved_at, published_at"


class WebStoreMethods:
    """:class:`sessions.web.WebStore` for PostgresStore."""

    _pool: Any

    # -- the pages' posts ----------------------------------------------------------------------

    async def add_web_post(self, channel_id: str, key: str, content: str, *, thread: bool, at: datetime) -> WebPost:
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO web_posts (channel_id, key, content, posted_at) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (key) DO NOTHING RETURNING id",
                channel_id,
                key,
                content,
                ts(at),
            )
            if inserted is not None and thread:
                # Thread ids are unique across every page: the ledger finds a prompt by (platform, thread id).
                await conn.execute("UPDATE web_posts SET thread_id = $1 WHERE id = $2", f"t{inserted}", inserted)
            # Inserted here, or by another process (ON CONFLICT waited for its commit): there now.
            row = await conn.fetchrow(f"SELECT {_POST_COLUMNS} FROM web_posts WHERE key = $1", key)
        return _post(row)

    async def web_post(self, key: str) -> WebPost | None:
        row = await self._pool.fetchrow(f"SELECT {_POST_COLUMNS} FROM web_posts WHERE key = $1", key)
        return None if row is None else _post(row)

    async def web_posts(self, channel_id: str) -> list[WebPost]:
        rows = await self._pool.fetch(
            f"SELECT {_POST_COLUMNS} FROM web_posts WHERE channel_id = $1 ORDER BY id", channel_id
        )
        return [_post(row) for row in rows]

    # -- replies ---------------------------------------------------------------------------------

    async def channel_replies(self, session_id: int, platform: str, channel_id: str) -> list[ReplyRecord]:
        rows = await self._pool.fetch(
            f"SELECT {REPLY_COLUMNS} FROM replies WHERE session_id = $1 AND platform = $2 AND channel_id = $3 "
            f"AND {STANDING} ORDER BY created_at, id",
            session_id,
            platform,
            channel_id,
        )
        return [as_reply(row) for row in rows]

    async def find_reply(self, platform: str, channel_id: str, message_id: str) -> ReplyRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {REPLY_COLUMNS} FROM replies WHERE platform = $1 AND channel_id = $2 AND message_id = $3 "
            f"AND {STANDING}",
            platform,
            channel_id,
            message_id,
        )
        return None if row is None else as_reply(row)

    async def reply_counts(self, session_id: int) -> list[ChannelCount]:
        rows = await self._pool.fetch(
            "SELECT prompt_id, platform, channel_id, count(*) AS replies FROM replies "
            f"WHERE session_id = $1 AND {STANDING} GROUP BY prompt_id, platform, channel_id "
            # Byte order, as SQLite sorts: the same answer from both stores whatever the locale.
            'ORDER BY prompt_id, platform COLLATE "C", channel_id COLLATE "C"',
            session_id,
        )
        return [
            ChannelCount(
                prompt_id=row["prompt_id"],
                platform=row["platform"],
                channel_id=row["channel_id"],
                replies=row["replies"],
            )
            for row in rows
        ]

    async def newest_replies(self, session_id: int, limit: int) -> list[ReplyRecord]:
        rows = await self._pool.fetch(
            f"SELECT {REPLY_COLUMNS} FROM replies WHERE session_id = $1 AND {STANDING} "
            "ORDER BY created_at DESC, id DESC LIMIT $2",
            session_id,
            limit,
        )
        return [as_reply(row) for row in rows]

    # -- sign-in links -----------------------------------------------------------------------------

    async def add_sign_in(self, token_hash: str, member: str, *, expires_at: datetime) -> None:
        await self._pool.execute(
            "INSERT INTO web_sign_ins (token_hash, member, expires_at) VALUES ($1, $2, $3)",
            token_hash,
            member,
            ts(expires_at),
        )

    async def redeem_sign_in(self, token_hash: str, *, now: datetime) -> str | None:
        # One compare-and-set: of two racing redemptions (from any processes), one gets the member
        # and the other, once the first commits, finds the link used.
        member = await self._pool.fetchval(
            "UPDATE web_sign_ins SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 "
            "RETURNING member",
            ts(now),
            token_hash,
        )
        return None if member is None else str(member)

    # -- plans -----------------------------------------------------------------------------------

    async def web_plans(self) -> list[StoredPlan]:
        rows = await self._pool.fetch(
            'SELECT name, plan, created_by, updated_at FROM web_plans ORDER BY name COLLATE "C"'
        )
        return [
            StoredPlan(
                name=row["name"], plan=row["plan"], created_by=row["created_by"], updated_at=dt(row["updated_at"])
            )
            for row in rows
        ]

    async def save_web_plan(self, plan: StoredPlan) -> None:
        await self._pool.execute(
            "INSERT INTO web_plans (name, plan, created_by, updated_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (name) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at",
            plan.name,
            plan.plan,
            plan.created_by,
            ts(plan.updated_at),
        )

    # -- the article -----------------------------------------------------------------------------

    async def add_article_version(
        self, session_id: int, markdown: str, *, saved_by: str, at: datetime, publish: bool
    ) -> ArticleVersion:
        row = await self._pool.fetchrow(
            "INSERT INTO article_versions (session_id, markdown, saved_by, saved_at, published_at) "
            f"VALUES ($1, $2, $3, $4, $5) RETURNING {_VERSION_COLUMNS}",
            session_id,
            markdown.encode("utf-8"),
            saved_by,
            ts(at),
            ts(at) if publish else None,
        )
        return _version(row)

    async def article_versions(self, session_id: int) -> list[ArticleVersion]:
        rows = await self._pool.fetch(
            f"SELECT {_VERSION_COLUMNS} FROM article_versions WHERE session_id = $1 ORDER BY id DESC", session_id
        )
        return [_version(row) for row in rows]

    async def published_article(self, session_id: int) -> ArticleVersion | None:
        row = await self._pool.fetchrow(
            f"SELECT {_VERSION_COLUMNS} FROM article_versions WHERE session_id = $1 AND published_at IS NOT NULL "
            "ORDER BY published_at DESC, id DESC LIMIT 1",
            session_id,
        )
        return None if row is None else _version(row)

    async def published_articles(self, limit: int) -> list[ArticleVersion]:
        rows = await self._pool.fetch(
            # Each session's newest published version: one per session, newest publication first.
            f"SELECT {_VERSION_COLUMNS} FROM (SELECT DISTINCT ON (session_id) {_VERSION_COLUMNS} "
            "FROM article_versions WHERE published_at IS NOT NULL "
            "ORDER BY session_id, published_at DESC, id DESC) AS newest "
            "ORDER BY published_at DESC, id DESC LIMIT $1",
            limit,
        )
        return [_version(row) for row in rows]


def _post(row: Any) -> WebPost:
    return WebPost(
        id=row["id"],
        channel_id=row["channel_id"],
        key=row["key"],
        thread_id=row["thread_id"],
        content=row["content"],
        posted_at=dt(row["posted_at"]),
    )


def _version(row: Any) -> ArticleVersion:
    published_at = row["published_at"]
    return ArticleVersion(
        id=row["id"],
        session_id=row["session_id"],
        markdown=bytes(row["markdown"]).decode("utf-8"),
        saved_by=row["saved_by"],
        saved_at=dt(row["saved_at"]),
        published_at=None if published_at is None else dt(published_at),
    )
