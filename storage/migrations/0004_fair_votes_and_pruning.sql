-- One vote per member per reply, and none from its author; and what pruning needs (issue 12).
--
-- A reply's `reactions` counted every (member, emoji) row present, so a member reacting to their
-- own reply with ten different emoji gave it ten votes and pushed it into the recap's highlights.
-- It now counts the members with at least one reaction present, the author left out (same
-- platform: the reaction row is keyed by the reply's own platform, channel and message). The
-- reactions table itself is unchanged: still one row per (member, emoji), newest change wins, so
-- redelivered and reordered adds and removes still commute.
--
-- Each trigger asks one question of the member's other emoji on the same reply, a probe of the
-- reactions primary key (platform, channel_id, message_id, user_id, ...): whether this change makes
-- them start or stop being a voter. The tallies of 0003 follow replies.reactions as before.

DROP TRIGGER reactions_count_insert;
CREATE TRIGGER reactions_count_insert AFTER INSERT ON reactions WHEN NEW.present = 1
BEGIN
    UPDATE replies SET reactions = reactions + 1
    WHERE platform = NEW.platform AND channel_id = NEW.channel_id AND message_id = NEW.message_id
      AND author_id <> NEW.user_id
      AND NOT EXISTS (
        SELECT 1 FROM reactions AS x
        WHERE x.platform = NEW.platform AND x.channel_id = NEW.channel_id AND x.message_id = NEW.message_id
          AND x.user_id = NEW.user_id AND x.emoji <> NEW.emoji AND x.present = 1);
END;

DROP TRIGGER reactions_count_update;
CREATE TRIGGER reactions_count_update AFTER UPDATE OF present ON reactions
    WHEN NEW.present <> OLD.present
BEGIN
    -- The member's other emoji as they stand after this row's change (a multi-row UPDATE, as
    -- forget_author makes, has changed the rows before this one already): with none present, this
    -- emoji alone decides whether they vote.
    UPDATE replies SET reactions = reactions + (CASE WHEN NEW.present = 1 THEN 1 ELSE -1 END)
    WHERE platform = NEW.platform AND channel_id = NEW.channel_id AND message_id = NEW.message_id
      AND author_id <> NEW.user_id
      AND NOT EXISTS (
        SELECT 1 FROM reactions AS x
        WHERE x.platform = NEW.platform AND x.channel_id = NEW.channel_id AND x.message_id = NEW.message_id
          AND x.user_id = NEW.user_id AND x.emoji <> NEW.emoji AND x.present = 1);
END;

-- The folding trigger of 0003 with its reactions step counting members instead of rows; every
-- other step is unchanged (the tally steps first, then the folding, for the reasons given there).
DROP TRIGGER replies_fold_early_events;
CREATE TRIGGER replies_fold_early_events AFTER INSERT ON replies
BEGIN
    INSERT INTO tally_by_minute (session_id, prompt_id, minute, replies, reactions)
    SELECT NEW.session_id, NEW.prompt_id,
           CAST(NEW.created_at / 60 AS INTEGER) - (NEW.created_at / 60 < CAST(NEW.created_at / 60 AS INTEGER)),
           1, NEW.reactions
    WHERE NEW.deleted_at IS NULL
    ON CONFLICT DO UPDATE SET replies = replies + 1, reactions = reactions + excluded.reactions;
    INSERT INTO tally_by_author (session_id, platform, author_id, replies)
    SELECT NEW.session_id, NEW.platform, NEW.author_id, 1
    WHERE NEW.deleted_at IS NULL
    ON CONFLICT DO UPDATE SET replies = replies + 1;
    INSERT INTO tally_by_prompt (session_id, prompt_id, people)
    SELECT NEW.session_id, NEW.prompt_id, 1
    WHERE NEW.deleted_at IS NULL AND NOT EXISTS (
        SELECT 1 FROM replies AS o
        WHERE o.session_id = NEW.session_id AND o.platform = NEW.platform AND o.author_id = NEW.author_id
          AND o.prompt_id = NEW.prompt_id AND o.deleted_at IS NULL AND o.id <> NEW.id)
    ON CONFLICT DO UPDATE SET people = people + 1;

    UPDATE replies SET deleted_at = (
        SELECT d.deleted_at FROM deletions AS d
        WHERE d.platform = NEW.platform AND d.channel_id = NEW.channel_id
          AND d.message_id = NEW.message_id)
    WHERE id = NEW.id AND EXISTS (
        SELECT 1 FROM deletions AS d
        WHERE d.platform = NEW.platform AND d.channel_id = NEW.channel_id
          AND d.message_id = NEW.message_id);
    UPDATE replies SET reactions = (
        SELECT count(DISTINCT x.user_id) FROM reactions AS x
        WHERE x.platform = NEW.platform AND x.channel_id = NEW.channel_id
          AND x.message_id = NEW.message_id AND x.present = 1 AND x.user_id <> NEW.author_id)
    WHERE id = NEW.id AND EXISTS (
        SELECT 1 FROM reactions AS x
        WHERE x.platform = NEW.platform AND x.channel_id = NEW.channel_id
          AND x.message_id = NEW.message_id);
    UPDATE replies SET
        edits = (SELECT count(*) FROM reply_edits AS e
                 WHERE e.platform = NEW.platform AND e.channel_id = NEW.channel_id
                   AND e.message_id = NEW.message_id),
        (text, edited_at) = (SELECT e.text, e.edited_at FROM reply_edits AS e
                             WHERE e.platform = NEW.platform AND e.channel_id = NEW.channel_id
                               AND e.message_id = NEW.message_id
                             ORDER BY e.edited_at DESC LIMIT 1)
    WHERE id = NEW.id AND EXISTS (
        SELECT 1 FROM reply_edits AS e
        WHERE e.platform = NEW.platform AND e.channel_id = NEW.channel_id
          AND e.message_id = NEW.message_id);
END;

-- Existing counts, recounted the new way. Only replies with a reaction row can change; the
-- replies_tally_reactions trigger (0003) moves their minute's tally along with them.
UPDATE replies SET reactions = (
    SELECT count(DISTINCT x.user_id) FROM reactions AS x
    WHERE x.platform = replies.platform AND x.channel_id = replies.channel_id
      AND x.message_id = replies.message_id AND x.present = 1 AND x.user_id <> replies.author_id)
WHERE (platform, channel_id, message_id) IN (SELECT DISTINCT platform, channel_id, message_id FROM reactions);

-- Pruning (sessions/retention.py) walks both tables oldest first, a bounded batch at a time;
-- without these it would scan the whole table for each batch. Each costs one more B-tree insert
-- per delivery id or deletion stored, none per reply.
CREATE INDEX inbound_events_by_age ON inbound_events (seen_at);
CREATE INDEX deletions_by_age ON deletions (deleted_at);
-- "Is this channel a thread of ours?" for a deletion (Discord threads are channels of their own).
CREATE INDEX posts_by_thread_channel ON posts (platform, thread_channel_id) WHERE thread_channel_id IS NOT NULL;
