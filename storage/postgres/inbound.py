"""The statements that store inbound events (replies, edits, deletions, reactions) with their
parameters, each led by its delivery's record when the platform gave it an id.

Each is idempotent and, with the schema's triggers (migrations/0001_init.sql), commutes with the
others, which is what lets the writer group a batch of them by statement in any order. Members'
words travel as UTF-8 bytes (bytea: see the migration).
"""

from __future__ import annotations

from datetime import datetime

from sessions.model import MessageRef
from sessions.records import NewReply
from storage.batching import Statement

Statements = tuple[Statement, ...]

INSERT_REPLY = (
    "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
    "author_name, text, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
    "ON CONFLICT (platform, channel_id, message_id) DO NOTHING"
)
# A batch's replies in one statement (the writer turns INSERT_REPLY's rows into its columns): the
# tallies are then counted once per batch (migrations/0007_tallies_by_statement.sql).
INSERT_REPLIES = (
    "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
    "author_name, text, created_at) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], "
    "$5::text[], $6::text[], $7::bytea[], $8::bytea[], $9::float8[]) "
    "ON CONFLICT (platform, channel_id, message_id) DO NOTHING"
)
# Statements the writer runs once for a batch, with each parameter as an array of the rows' values.
AS_ONE_STATEMENT = {INSERT_REPLY: INSERT_REPLIES}
INSERT_DELIVERY = (
    "INSERT INTO inbound_events (platform, delivery_id, seen_at) VALUES ($1, $2, $3) "
    "ON CONFLICT (platform, delivery_id) DO NOTHING"
)
INSERT_EDIT = (
    "INSERT INTO reply_edits (platform, channel_id, message_id, edited_at, text) VALUES ($1, $2, $3, $4, $5) "
    "ON CONFLICT DO NOTHING"
)
INSERT_EDIT_OF_KNOWN = (
    "INSERT INTO reply_edits (platform, channel_id, message_id, edited_at, text) "
    "SELECT $1::text, $2::text, $3::text, $4::float8, $5::bytea WHERE EXISTS (SELECT 1 FROM replies "
    "WHERE platform = $1 AND channel_id = $2 AND message_id = $3) "
    "ON CONFLICT DO NOTHING"
)
INSERT_DELETION = (
    "INSERT INTO deletions (platform, channel_id, message_id, deleted_at) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT DO NOTHING"
)
UPSERT_REACTION = (
    "INSERT INTO reactions AS r (platform, channel_id, message_id, user_id, emoji, present, changed_at) "
    "SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::integer, $7::float8 WHERE EXISTS (SELECT 1 "
    "FROM replies WHERE platform = $1 AND channel_id = $2 AND message_id = $3) "
    "ON CONFLICT (platform, channel_id, message_id, user_id, emoji) DO UPDATE "
    "SET present = excluded.present, changed_at = excluded.changed_at "
    "WHERE excluded.changed_at >= r.changed_at"
)


def _delivery(platform: str, delivery_id: str | None, at: float) -> Statements:
    return () if delivery_id is None else ((INSERT_DELIVERY, (platform, delivery_id, at)),)


def reply_posted(reply: NewReply) -> Statements:
    created = reply.created_at.timestamp()
    return (
        *_delivery(reply.platform, reply.delivery_id, created),
        (
            INSERT_REPLY,
            (
                reply.session_id,
                reply.prompt_id,
                reply.platform,
                reply.channel_id,
                reply.message_id,
                reply.author_id,
                reply.author_name.encode("utf-8"),
                reply.text.encode("utf-8"),
                created,
            ),
        ),
    )


def reply_edited(
    message: MessageRef, text: str, *, at: datetime, keep_if_unknown: bool, delivery_id: str | None
) -> Statements:
    channel, moment = message.channel, at.timestamp()
    sql = INSERT_EDIT if keep_if_unknown else INSERT_EDIT_OF_KNOWN
    return (
        *_delivery(channel.platform, delivery_id, moment),
        (sql, (channel.platform, channel.channel_id, message.message_id, moment, text.encode("utf-8"))),
    )


def reply_deleted(message: MessageRef, *, at: datetime, delivery_id: str | None) -> Statements:
    channel, moment = message.channel, at.timestamp()
    return (
        *_delivery(channel.platform, delivery_id, moment),
        (INSERT_DELETION, (channel.platform, channel.channel_id, message.message_id, moment)),
    )


def reaction_changed(
    message: MessageRef, user_id: str, emoji: str, *, added: bool, at: datetime, delivery_id: str | None
) -> Statements:
    channel, moment = message.channel, at.timestamp()
    params = (channel.platform, channel.channel_id, message.message_id, user_id, emoji, int(added), moment)
    return (*_delivery(channel.platform, delivery_id, moment), (UPSERT_REACTION, params))
