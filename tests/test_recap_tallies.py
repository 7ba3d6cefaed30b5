"""The recap's tallies and votes on SQLite databases made by older Popups: migration 0003 counts
what is already there, and 0004 recounts the votes already gamed.

What every store promises of its tallies and votes (any mix of events, in any order; each path one
by one; the updates the schema refuses; one vote per member, none from the author) is the contract
suite's, on SQLite and PostgreSQL alike: tests/store_contract/test_tallies_contract.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sessions.model import ChannelRef
from storage.sqlite import SqliteStore
from storage.sqlite.migrate import migrations
from tests.store_contract.conftest import Backend
from tests.store_contract.tallies import PLATFORM, PROMPTS, T0, Place, assert_tallies_right, votes

# -- migration -------------------------------------------------------------------------------------


def _schema_2(path: Path) -> None:
    """A database as Popup left it before migration 0003, with a session's replies in it."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for number, script in migrations():
            if number <= 2:
                db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
        db.execute("BEGIN")
        for session_id in (1, 2):
            db.execute(
                "INSERT INTO sessions VALUES (?, 'p', 't', 'i', 'UTC', 'running', 0, 'U0', ?, ?, NULL)",
                (session_id, T0.timestamp(), T0.timestamp() + 8 * 3600),
            )
            db.execute("INSERT INTO session_channels VALUES (?, 0, ?, ?)", (session_id, PLATFORM, f"old{session_id}"))
            for position in range(PROMPTS):
                db.execute(
                    "INSERT INTO prompts (session_id, position, text, due_at, state) VALUES (?, ?, 'q', ?, 'posted')",
                    (session_id, position + 1, T0.timestamp() + position * 3600),
                )
        prompts = {
            s: [r[0] for r in db.execute("SELECT id FROM prompts WHERE session_id = ? ORDER BY position", (s,))]
            for s in (1, 2)
        }
        # Through the schema-2 triggers, as the bot would have written them: a deletion before its
        # reply, reactions, a deletion after.
        db.execute("INSERT INTO deletions VALUES (?, 'old1', 'early', ?)", (PLATFORM, T0.timestamp()))
        for n in range(200):
            session_id = 1 + n % 2
            db.execute(
                "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
                "author_name, text, created_at) VALUES (?, ?, ?, ?, ?, ?, 'name', 'text', ?)",
                (
                    session_id,
                    prompts[session_id][n % PROMPTS],
                    PLATFORM,
                    f"old{session_id}",
                    f"r{n}",
                    f"U{n % 7}",
                    T0.timestamp() + n * 97.5,
                ),
            )
            if n % 3 == 0:
                db.execute(
                    "INSERT INTO reactions VALUES (?, ?, ?, 'UR', 'a', 1, ?)",
                    (PLATFORM, f"old{session_id}", f"r{n}", T0.timestamp()),
                )
            if n % 11 == 0:
                db.execute(
                    "INSERT INTO deletions VALUES (?, ?, ?, ?)", (PLATFORM, f"old{session_id}", f"r{n}", T0.timestamp())
                )
        db.execute(
            "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
            "author_name, text, created_at) VALUES (1, ?, ?, 'old1', 'early', 'U1', 'name', 'text', ?)",
            (prompts[1][0], PLATFORM, T0.timestamp()),
        )
        db.execute("COMMIT")
    finally:
        db.close()


async def test_migration_counts_what_is_already_there(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _schema_2(path)
    backend = Backend("sqlite", str(path))
    store = await SqliteStore.open(path)
    try:
        # Migrated through 0003 and every later migration: the newest schema.
        newest = migrations()[-1][0]
        assert newest >= 3
        assert [tuple(row) for row in await store._all("PRAGMA user_version", ())] == [(newest,)]
        for session_id in (1, 2):
            await assert_tallies_right(backend, store, session_id)
        assert (await store.session_stats(1)).replies == 100 - 10  # r0, r22, ... deleted; "early" too
        # And they keep counting from there, with a deletion that arrived before the upgrade.
        session = await store.get_session(1)
        assert session is not None
        old = Place(
            session, tuple(p.id for p in await store.prompts(1)), ChannelRef(platform=PLATFORM, channel_id="old1")
        )
        await store.delete_reply(old.ref("late"), at=T0)
        await store.add_reply(old.reply("late", 2, "U9", 1000))
        await store.add_reply(old.reply("new", 2, "U9", 2000))
        await store.set_reaction(old.ref("r2"), "UR", "a", added=True, at=T0)
        await store.delete_reply(old.ref("r4"), at=T0)
        assert await store.forget_author(1, PLATFORM, "U3") > 0
        for session_id in (1, 2):
            await assert_tallies_right(backend, store, session_id)
    finally:
        await store.close()


async def test_migration_4_recounts_votes_already_gamed(tmp_path: Path) -> None:
    path = tmp_path / "schema3.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for number, script in migrations():
            if number <= 3:
                db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO sessions VALUES (1, 'p', 't', 'i', 'UTC', 'running', 0, 'U0', ?, ?, NULL)",
            (T0.timestamp(), T0.timestamp() + 8 * 3600),
        )
        db.execute("INSERT INTO session_channels VALUES (1, 0, ?, 'old')", (PLATFORM,))
        db.execute("INSERT INTO prompts (session_id, position, text, due_at, state) VALUES (1, 1, 'q', ?, 'posted')",
                   (T0.timestamp(),))
        for n, author in enumerate(("U1", "U2", "U3")):
            db.execute(
                "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
                "author_name, text, created_at) VALUES (1, 1, ?, 'old', ?, ?, 'name', 'text', ?)",
                (PLATFORM, f"r{n}", author, T0.timestamp() + n),
            )
        # r0: its author's five emoji and one of another member's; r1: two members, two emoji each;
        # r2: deleted, with its author's emoji (it stays out of the tallies either way).
        reactions = [("r0", "U1", e) for e in "abcde"] + [("r0", "U2", "a")]
        reactions += [("r1", u, e) for u in ("U3", "U4") for e in "ab"] + [("r2", "U3", "a")]
        for message, user, emoji in reactions:
            db.execute("INSERT INTO reactions VALUES (?, 'old', ?, ?, ?, 1, ?)",
                       (PLATFORM, message, user, emoji, T0.timestamp()))
        db.execute("INSERT INTO deletions VALUES (?, 'old', 'r2', ?)", (PLATFORM, T0.timestamp()))
        db.execute("COMMIT")
        assert [r[0] for r in db.execute("SELECT reactions FROM replies ORDER BY id")] == [6, 4, 1]  # as 0003 counted
    finally:
        db.close()
    backend = Backend("sqlite", str(path))
    store = await SqliteStore.open(path)
    try:
        assert await votes(store, 1) == {"r0": 1, "r1": 2}
        assert [r[0] for r in await store._all("SELECT reactions FROM replies ORDER BY id", ())] == [1, 2, 0]
        await assert_tallies_right(backend, store, 1)
        assert (await store.session_stats(1)).reactions == 3
    finally:
        await store.close()
