"""Sessions across channels and platforms, on SQLite: which session holds a channel, per-channel
figures and linked identities (migration 0005). The store calls these with its connections; every
value travels as a parameter.
"""

from __future__ import annotations

import sqlite3

import aiosqlite

from sessions.model import ChannelRef
from sessions.records import ACTIVE_STATES, ChannelFigures, LinkedVoices, SessionChannel
from storage.sqlite.connections import fetch_all


async def active_session_id(db: aiosqlite.Connection, channel: ChannelRef) -> int | None:
    """The running or scheduled session that holds ``channel``, if any."""
    marks = ", ".join("?" for _ in ACTIVE_STATES)
    rows = await db.execute_fetchall(
        "SELECT s.id AS id FROM session_channels AS c JOIN sessions AS s ON s.id = c.session_id "
        f"WHERE c.platform = ? AND c.channel_id = ? AND s.state IN ({marks}) ORDER BY s.id DESC LIMIT 1",
        (channel.platform, channel.channel_id, *(s.value for s in ACTIVE_STATES)),
    )
    row = next(iter(rows), None)
    return None if row is None else int(row["id"])


def as_session_channel(row: sqlite3.Row) -> SessionChannel:
    return SessionChannel(
        channel=ChannelRef(platform=row["platform"], channel_id=row["channel_id"]),
        name=row["name"],
        joined_by=row["joined_by"],
    )


async def channel_figures(read: aiosqlite.Connection, session_id: int) -> list[ChannelFigures]:
    # One pass over the session's standing replies. Only sessions with more than one channel ask
    # (a single channel's figures are the session's own, from the tallies), so the recap of a
    # one-channel day of a million replies does not pay for it.
    rows = await fetch_all(
        read,
        # A Discord reply lives in its thread (a channel of its own there): the prompt's post with
        # that thread (index posts_by_thread) names the session channel it hangs under.
        "SELECT r.platform AS platform, coalesce(p.channel_id, r.channel_id) AS channel_id, count(*) AS replies, "
        "count(DISTINCT r.author_id) AS people, sum(r.reactions) AS reactions FROM replies AS r "
        "LEFT JOIN posts AS p ON p.platform = r.platform AND p.thread_id = r.channel_id "
        "WHERE r.session_id = ? AND r.deleted_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2",
        (session_id,),
    )
    return [
        ChannelFigures(
            channel=ChannelRef(platform=row["platform"], channel_id=row["channel_id"]),
            replies=row["replies"],
            people=row["people"],
            reactions=row["reactions"] or 0,
        )
        for row in rows
    ]


async def redeem_link_code(
    db: aiosqlite.Connection, code: str, platform: str, user_id: str, *, at: float, not_before: float
) -> tuple[str, str] | None:
    """Inside the writer's transaction: see :meth:`sessions.store.Store.redeem_link_code`."""
    used = list(
        await db.execute_fetchall(
            "DELETE FROM link_codes WHERE code = ? RETURNING platform, user_id, created_at", (code,)
        )
    )
    if not used:
        return None
    maker = (str(used[0]["platform"]), str(used[0]["user_id"]))
    if used[0]["created_at"] < not_before or maker == (platform, user_id):
        return None  # too old, or typed by its own maker: used up all the same (one time)
    person = await _person(db, *maker) or f"{maker[0]}:{maker[1]}"
    other = await _person(db, platform, user_id)
    if other is not None and other != person:
        # The typist had linked before: their whole group joins the maker's.
        await db.execute("UPDATE identity_links SET person = ? WHERE person = ?", (person, other))
    for who in (maker, (platform, user_id)):
        await db.execute(
            "INSERT INTO identity_links (platform, user_id, person, linked_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO UPDATE SET person = excluded.person",
            (*who, person, at),
        )
    return maker


async def _person(db: aiosqlite.Connection, platform: str, user_id: str) -> str | None:
    rows = list(
        await db.execute_fetchall(
            "SELECT person FROM identity_links WHERE platform = ? AND user_id = ?", (platform, user_id)
        )
    )
    return str(rows[0]["person"]) if rows else None


async def linked_voices(read: aiosqlite.Connection, session_id: int) -> list[LinkedVoices]:
    # The session's writers are a row each in tally_by_author (migration 0003): joining the links
    # to them reads a row per person, never the replies.
    rows = await fetch_all(
        read,
        "WITH linked AS (SELECT l.person AS person, t.platform AS platform, t.author_id AS author_id, "
        "t.replies AS replies FROM tally_by_author AS t JOIN identity_links AS l "
        "ON l.platform = t.platform AND l.user_id = t.author_id WHERE t.session_id = ?) "
        "SELECT person, platform, author_id, replies FROM linked "
        "WHERE person IN (SELECT person FROM linked GROUP BY person HAVING count(*) > 1) "
        "ORDER BY person, platform, author_id",
        (session_id,),
    )
    groups: dict[str, list[tuple[str, str, int]]] = {}
    for row in rows:
        groups.setdefault(row["person"], []).append((row["platform"], row["author_id"], row["replies"]))
    voices = []
    for person, identities in groups.items():
        who = " OR ".join("(platform = ? AND author_id = ?)" for _ in identities)
        params: list[object] = [session_id]
        for platform, author_id, _ in identities:
            params += [platform, author_id]
        shared = await fetch_all(
            read,
            # From the index replies_by_author_prompt (migration 0002): no table rows are read.
            f"SELECT prompt_id FROM replies WHERE session_id = ? AND ({who}) AND deleted_at IS NULL "
            "GROUP BY prompt_id HAVING count(DISTINCT platform || ':' || author_id) > 1 ORDER BY prompt_id",
            tuple(params),
        )
        voices.append(
            LinkedVoices(
                person=person,
                identities=tuple(identities),
                shared_prompts=tuple(int(row["prompt_id"]) for row in shared),
            )
        )
    return voices
