-- One vote per member per reply, and none from its author; and what pruning needs (issue 12), as
-- the SQLite store's storage/migrations/0004.
--
-- A reply's `reactions` counted every (member, emoji) row present, so a member reacting to their
-- own reply with ten different emoji gave it ten votes and pushed it into the recap's highlights.
-- It now counts the members with at least one reaction present, the author left out (same
-- platform: the reaction row is keyed by the reply's own platform, channel and message). The
-- reactions table itself is unchanged: still one row per (member, emoji), newest change wins, so
-- redelivered and reordered adds and removes still commute.
--
-- SQLite fires a row's AFTER trigger as that row changes, so its triggers add or take one vote by
-- probing the member's other emoji. PostgreSQL fires AFTER row triggers once the whole statement
-- is done: in a statement that changes several of one member's emoji on a reply (forget_author's
-- does), each firing would see the others changed already and count the member's vote once per
-- emoji. So a change here recounts the reply's voters instead (a range of the reactions primary
-- key, (platform, channel_id, message_id, user_id, ...)): every firing then agrees on the answer,
-- whatever the statement. The tallies follow replies.reactions through replies_before_update.

CREATE OR REPLACE FUNCTION reactions_count() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    author text;
    voters integer;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.present = OLD.present THEN
        RETURN NULL;  -- a stale or repeated change: nobody's vote moved
    END IF;
    SELECT r.author_id INTO author FROM replies AS r
    WHERE r.platform = NEW.platform AND r.channel_id = NEW.channel_id AND r.message_id = NEW.message_id;
    IF NOT FOUND OR author = NEW.user_id THEN
        RETURN NULL;  -- an early reaction (folded in when its reply lands), or the author's own
    END IF;
    SELECT count(DISTINCT x.user_id) INTO voters FROM reactions AS x
    WHERE x.platform = NEW.platform AND x.channel_id = NEW.channel_id AND x.message_id = NEW.message_id
      AND x.present = 1 AND x.user_id <> author;
    UPDATE replies SET reactions = voters
    WHERE platform = NEW.platform AND channel_id = NEW.channel_id AND message_id = NEW.message_id
      AND reactions <> voters;
    RETURN NULL;
END $$;

-- The folding of 0001 with its reactions step counting members instead of rows; every other step
-- is unchanged.
CREATE OR REPLACE FUNCTION replies_fold_early_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    early_deleted_at double precision;
    early_reactions integer;
    early_voters integer;
    early_edits integer;
BEGIN
    SELECT d.deleted_at INTO early_deleted_at FROM deletions AS d
    WHERE d.platform = NEW.platform AND d.channel_id = NEW.channel_id AND d.message_id = NEW.message_id;
    IF FOUND THEN
        NEW.deleted_at := early_deleted_at;
    END IF;
    SELECT count(*), count(DISTINCT x.user_id) FILTER (WHERE x.present = 1 AND x.user_id <> NEW.author_id)
    INTO early_reactions, early_voters FROM reactions AS x
    WHERE x.platform = NEW.platform AND x.channel_id = NEW.channel_id AND x.message_id = NEW.message_id;
    IF early_reactions > 0 THEN
        NEW.reactions := early_voters;
    END IF;
    SELECT count(*) INTO early_edits FROM reply_edits AS e
    WHERE e.platform = NEW.platform AND e.channel_id = NEW.channel_id AND e.message_id = NEW.message_id;
    IF early_edits > 0 THEN
        NEW.edits := early_edits;
        SELECT e.text, e.edited_at INTO NEW.text, NEW.edited_at FROM reply_edits AS e
        WHERE e.platform = NEW.platform AND e.channel_id = NEW.channel_id AND e.message_id = NEW.message_id
        ORDER BY e.edited_at DESC LIMIT 1;
    END IF;
    RETURN NEW;
END $$;

-- Existing counts, recounted the new way. Only replies with a reaction row can change;
-- replies_before_update moves their minute's tally along with them.
UPDATE replies AS r SET reactions = v.voters
FROM (
    SELECT x.platform, x.channel_id, x.message_id,
           count(DISTINCT x.user_id) FILTER (WHERE x.present = 1 AND x.user_id <> o.author_id) AS voters
    FROM reactions AS x
    JOIN replies AS o ON o.platform = x.platform AND o.channel_id = x.channel_id AND o.message_id = x.message_id
    GROUP BY x.platform, x.channel_id, x.message_id, o.author_id
) AS v
WHERE r.platform = v.platform AND r.channel_id = v.channel_id AND r.message_id = v.message_id
  AND r.reactions <> v.voters;

-- Pruning (sessions/retention.py) walks both tables oldest first, a bounded batch at a time;
-- without these it would scan the whole table for each batch. Each costs one more B-tree insert
-- per delivery id or deletion stored, none per reply.
CREATE INDEX inbound_events_by_age ON inbound_events (seen_at);
CREATE INDEX deletions_by_age ON deletions (deleted_at);
-- "Is this channel a thread of ours?" for a deletion (Discord threads are channels of their own).
CREATE INDEX posts_by_thread_channel ON posts (platform, thread_channel_id) WHERE thread_channel_id IS NOT NULL;
