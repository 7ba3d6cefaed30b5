"""What the web side keeps (:class:`sessions.web.WebStore`), on SQLite: the pages' posts, sign-in
links, plans made in the dashboard and the article's versions (migration 0006), and the reads of
replies that the pages and the dashboard show.

A mixin of :class:`storage.sqlite.SqliteStore`: it writes through the store's one writer and reads
on its read-only connection, as the rest of the store does.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import aiosqlite

from sessions.records import ReplyRecord
from sessions.web import ArticleVersion, ChannelCount, StoredPlan, WebPost
from storage.sqlite.connections import fetch_all, fetch_one
from storage.sqlite.recap_queries import STANDING
from storage.sqlite.rows import REPLY_COLUMNS, ReplyRow, as_reply, dt, dt_or_none, ts
from storage.sqlite.writer import Writer

_POST_COLUMNS = "id, channel_id, key, thread_id, content, posted_at"
_VERSION_COLUMNS = "id, session_id, markdown, saved_by, saved_at, published_at"


class WebStoreMethods:
    """:class:`sessions.web.WebStore` for SqliteStore."""

    _writer: Writer
    _read: aiosqlite.Connection

    # -- the pages' posts ----------------------------------------------------------------------

    async def add_web_post(self, channel_id: str, key: str, content: str, *, thread: bool, at: datetime) -> WebPost:
        async def add(db: aiosqlite.Connection) -> sqlite3.Row:
            cursor = await db.execute(
                "INSERT INTO web_posts (channel_id, key, content, posted_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING RETURNING id",
                (channel_id, key, content, ts(at)),
            )
            inserted = await cursor.fetchone()
            await cursor.close()
            if inserted is not None and thread:
                # Thread ids are unique across every page: the ledger finds a prompt by (platform, thread id).
                await db.execute("UPDATE web_posts SET thread_id = ? WHERE id = ?", (f"t{inserted[0]}", inserted[0]))
            rows = await db.execute_fetchall(f"SELECT {_POST_COLUMNS} FROM web_posts WHERE key = ?", (key,))
            return next(iter(rows))

        return _post(await self._writer.transaction(add))

    async def web_post(self, key: str) -> WebPost | None:
        row = await fetch_one(self._read, f"SELECT {_POST_COLUMNS} FROM web_posts WHERE key = ?", (key,))
        return None if row is None else _post(row)

    async def web_posts(self, channel_id: str) -> list[WebPost]:
        rows = await fetch_all(
            self._read, f"SELECT {_POST_COLUMNS} FROM web_posts WHERE channel_id = ? ORDER BY id", (channel_id,)
        )
        return [_post(row) for row in rows]

    # -- replies ---------------------------------------------------------------------------------

    async def channel_replies(self, session_id: int, platform: str, channel_id: str) -> list[ReplyRecord]:
        rows = await fetch_all(
            self._read,
            f"SELECT {REPLY_COLUMNS} FROM replies WHERE session_id = ? AND platform = ? AND channel_id = ? "
            f"AND {STANDING} ORDER BY created_at, id",
            (session_id, platform, channel_id),
        )
        return [_reply(row) for row in rows]

    async def find_reply(self, platform: str, channel_id: str, message_id: str) -> ReplyRecord | None:
        row = await fetch_one(
            self._read,
            f"SELECT {REPLY_COLUMNS} FROM replies WHERE platform = ? AND channel_id = ? AND message_id = ? "
            f"AND {STANDING}",
            (platform, channel_id, message_id),
        )
        return None if row is None else _reply(row)

    async def reply_counts(self, session_id: int) -> list[ChannelCount]:
        rows = await fetch_all(
            self._read,
            "SELECT prompt_id, platform, channel_id, count(*) AS replies FROM replies "
            f"WHERE session_id = ? AND {STANDING} GROUP BY prompt_id, platform, channel_id "
            "ORDER BY prompt_id, platform, channel_id",
            (session_id,),
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
        rows = await fetch_all(
            self._read,
            f"SELECT {REPLY_COLUMNS} FROM replies WHERE session_id = ? AND {STANDING} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (session_id, limit),
        )
        return [_reply(row) for row in rows]

    # -- sign-in links -----------------------------------------------------------------------------

    async def add_sign_in(self, token_hash: str, member: str, *, expires_at: datetime) -> None:
        await self._writer.write(
            (
                "INSERT INTO web_sign_ins (token_hash, member, expires_at) VALUES (?, ?, ?)",
                (token_hash, member, ts(expires_at)),
            ),
            urgent=True,
        )

    async def redeem_sign_in(self, token_hash: str, *, now: datetime) -> str | None:
        # One compare-and-set: of two racing redemptions, one gets the member and one gets nothing.
        rows = await self._writer.statement(
            "UPDATE web_sign_ins SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ? "
            "RETURNING member",
            (ts(now), token_hash, ts(now)),
        )
        return str(rows[0]["member"]) if rows else None

    # -- plans -----------------------------------------------------------------------------------

    async def web_plans(self) -> list[StoredPlan]:
        rows = await fetch_all(self._read, "SELECT name, plan, created_by, updated_at FROM web_plans ORDER BY name", ())
        return [
            StoredPlan(
                name=row["name"], plan=row["plan"], created_by=row["created_by"], updated_at=dt(row["updated_at"])
            )
            for row in rows
        ]

    async def save_web_plan(self, plan: StoredPlan) -> None:
        await self._writer.statement(
            "INSERT INTO web_plans (name, plan, created_by, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET plan = excluded.plan, updated_at = excluded.updated_at",
            (plan.name, plan.plan, plan.created_by, ts(plan.updated_at)),
        )

    # -- the article -----------------------------------------------------------------------------

    async def add_article_version(
        self, session_id: int, markdown: str, *, saved_by: str, at: datetime, publish: bool
    ) -> ArticleVersion:
        rows = await self._writer.statement(
            "INSERT INTO article_versions (session_id, markdown, saved_by, saved_at, published_at) "
            f"VALUES (?, ?, ?, ?, ?) RETURNING {_VERSION_COLUMNS}",
            (session_id, markdown, saved_by, ts(at), ts(at) if publish else None),
        )
        return _version(rows[0])

    async def article_versions(self, session_id: int) -> list[ArticleVersion]:
        rows = await fetch_all(
            self._read,
            f"SELECT {_VERSION_COLUMNS} FROM article_versions WHERE session_id = ? ORDER BY id DESC",
            (session_id,),
        )
        return [_version(row) for row in rows]

    async def published_article(self, session_id: int) -> ArticleVersion | None:
        row = await fetch_one(
            self._read,
            f"SELECT {_VERSION_COLUMNS} FROM article_versions WHERE session_id = ? AND published_at IS NOT NULL "
            "ORDER BY published_at DESC, id DESC LIMIT 1",
            (session_id,),
        )
        return None if row is None else _version(row)

    async def published_articles(self, limit: int) -> list[ArticleVersion]:
        rows = await fetch_all(
            self._read,
            f"SELECT {_VERSION_COLUMNS} FROM article_versions AS v WHERE published_at IS NOT NULL "
            "AND id = (SELECT w.id FROM article_versions AS w WHERE w.session_id = v.session_id "
            "AND w.published_at IS NOT NULL ORDER BY w.published_at DESC, w.id DESC LIMIT 1) "
            "ORDER BY published_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [_version(row) for row in rows]


def _post(row: sqlite3.Row) -> WebPost:
    return WebPost(
        id=row["id"],
        channel_id=row["channel_id"],
        key=row["key"],
        thread_id=row["thread_id"],
        content=row["content"],
        posted_at=dt(row["posted_at"]),
    )


def _reply(row: sqlite3.Row) -> ReplyRecord:
    return as_reply(ReplyRow(*(row[name] for name in ReplyRow._fields)))


def _version(row: sqlite3.Row) -> ArticleVersion:
    return ArticleVersion(
        id=row["id"],
        session_id=row["session_id"],
        markdown=row["markdown"],
        saved_by=row["saved_by"],
        saved_at=dt(row["saved_at"]),
        published_at=dt_or_none(row["published_at"]),
    )
