-- Indexes for the day-end recap (storage/sqlite.py, "recap queries"); measured with
-- `python -m bench.recap` and, for their cost on every insert, `python -m bench.ingest`.

-- A prompt's standing replies by reactions: the ranking reads only the rows that can still make a
-- prompt's best (SQLite walks this index from the top) instead of sorting every reply with its
-- text. Partial rather than with a deleted_at column: statistics would average that column's
-- values (mostly NULL, the rest all different) into "selective" and mislead the planner elsewhere.
CREATE INDEX replies_standing_by_reactions ON replies (session_id, prompt_id, reactions) WHERE deleted_at IS NULL;

-- Who replied to what, answered from the index alone (no table rows, no sort). It starts with
-- replies_by_author's columns, so it serves that index's lookups (forget, per-author counts) and
-- replaces it: one more index would cost every insert, a wider one hardly does.
CREATE INDEX replies_by_author_prompt ON replies (session_id, platform, author_id, prompt_id, deleted_at);
DROP INDEX replies_by_author;
