"""Sessions across channels and platforms, on PostgreSQL: which session holds a channel (and the
channel locks racing processes take), per-channel figures and linked identities
(migration 0003, as the SQLite store's 0005). The store calls these with its pool or a connection
in its transaction; every value travels as a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sessions.model import ChannelRef
from sessions.records import ACTIVE_STATES, ChannelFigures, LinkedVoices, SessionChannel

_ACTIVE = [s.value for s in ACTIVE_STATES]




async def lock_channels(conn: Any, channels: Sequence[ChannelRef]) -> None:
    """Take the channels' transaction-scoped locks, in one order for every process (no deadlock)."""
    keys = sorted({f"popup:channel:{c.platform}:{c.channel_id}" for c in channels})
    for key in keys:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)


async def active_session_id(db: Any, channel: ChannelRef) -> int | None:
    """``db``: a connection or the pool (both answer fetchval)."""
    found = await db.fetchval(
        "SELECT s.id FROM session_channels AS c JOIN sessions AS s ON s.id = c.session_id "
        "WHERE c.platform = $1 AND c.channel_id = $2 AND s.state = ANY($3::text[]) ORDER BY s.id DESC LIMIT 1",
        channel.platform,
        channel.channel_id,
        _ACTIVE,
    )
    return None if found is None else int(found)


def as_session_channel(row: Any) -> SessionChannel:
    return SessionChannel(
        channel=ChannelRef(platform=row["platform"], channel_id=row["channel_id"]),
        name=row["name"],
        joined_by=row["joined_by"],
    )


async def channel_figures(db: Any, session_id: int) -> list[ChannelFigures]:
    # One pass over the session's standing replies; only sessions of more than one channel ask.
    rows = await db.fetch(
        # A Discord reply lives in its thread (a channel of its own there): the prompt's post with
        # that thread (index posts_by_thread) names the session channel it hangs under.
        "SELECT r.platform AS platform, coalesce(p.channel_id, r.channel_id) AS channel_id, "
        "count(*) AS replies, count(DISTINCT r.author_id) AS people, sum(r.reactions)::bigint AS reactions "
        "FROM replies AS r LEFT JOIN posts AS p ON p.platform = r.platform AND p.thread_id = r.channel_id "
        "WHERE r.session_id = $1 AND r.deleted_at IS NULL GROUP BY 1, 2 "
        # Byte order, as SQLite sorts: the same answer from both stores whatever the locale.
        'ORDER BY r.platform COLLATE "C", coalesce(p.channel_id, r.channel_id) COLLATE "C"',
        session_id,
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
    conn: Any, code: str, platform: str, user_id: str, *, at: float, not_before: float
) -> tuple[str, str] | None:
    """Inside the caller's transaction: see :meth:`sessions.store.Store.redeem_link_code`."""
    used = await conn.fetchrow("DELETE FROM link_codes WHERE code = $1 RETURNING platform, user_id, created_at", code)
    if used is None:
        return None  # unknown, or redeemed by another process a moment ago (the row was locked)
    maker = (str(used["platform"]), str(used["user_id"]))
    if used["created_at"] < not_before or maker == (platform, user_id):
        return None  # too old, or typed by its own maker: used up all the same (one time)
    # Link changes from every process take turns: two redemptions that merge the same groups must
    # not each see the other's half.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('popup:identity_links', 0))")
    person = await _person(conn, *maker) or f"{maker[0]}:{maker[1]}"
    other = await _person(conn, platform, user_id)
    if other is not None and other != person:
        # The typist had linked before: their whole group joins the maker's.
        await conn.execute("UPDATE identity_links SET person = $1 WHERE person = $2", person, other)
    await conn.executemany(
        "INSERT INTO identity_links (platform, user_id, person, linked_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (platform, user_id) DO UPDATE SET person = excluded.person",
        [(*who, person, at) for who in (maker, (platform, user_id))],
    )
    return maker


async def _person(conn: Any, platform: str, user_id: str) -> str | None:
    found = await conn.fetchval(
        "SELECT person FROM identity_links WHERE platform = $1 AND user_id = $2", platform, user_id
    )
    return None if found is None else str(found)


async def linked_voices(db: Any, session_id: int) -> list[LinkedVoices]:
    # The session's writers are a row each in tally_by_author: joining the links to them reads a
    # row per person, never the replies.
    rows = await db.fetch(
        "WITH linked AS (SELECT l.person AS person, t.platform AS platform, t.author_id AS author_id, "
        "t.replies AS replies FROM tally_by_author AS t JOIN identity_links AS l "
        "ON l.platform = t.platform AND l.user_id = t.author_id WHERE t.session_id = $1) "
        "SELECT person, platform, author_id, replies FROM linked "
        "WHERE person IN (SELECT person FROM linked GROUP BY person HAVING count(*) > 1) "
        # Byte order, as above.
        'ORDER BY person COLLATE "C", platform COLLATE "C", author_id COLLATE "C"',
        session_id,
    )
    groups: dict[str, list[tuple[str, str, int]]] = {}
    for row in rows:
        groups.setdefault(row["person"], []).append((row["platform"], row["author_id"], int(row["replies"])))
    voices = []
    for person, identities in groups.items():
        # From the index replies_by_author_prompt: the identities as two parallel arrays.
        shared = await db.fetch(
            "SELECT prompt_id FROM replies WHERE session_id = $1 "
            "AND (platform, author_id) IN (SELECT * FROM unnest($2::text[], $3::text[])) AND deleted_at IS NULL "
            "GROUP BY prompt_id HAVING count(DISTINCT (platform, author_id)) > 1 ORDER BY prompt_id",
            session_id,
            [platform for platform, _, _ in identities],
            [author_id for _, author_id, _ in identities],
        )
        voices.append(
            LinkedVoices(
                person=person,
                identities=tuple(identities),
                shared_prompts=tuple(int(row["prompt_id"]) for row in shared),
            )
        )
    return voices
