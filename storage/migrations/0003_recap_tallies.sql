-- Tallies for the day-end recap (storage/sqlite.py, "recap queries"), kept by triggers, so the
-- recap reads a row per (prompt, minute), per person and per prompt instead of every reply.
-- Measured with `python -m bench.recap`, and for their cost on every insert `python -m bench.ingest`.
--
-- They count standing replies only (deleted_at IS NULL), and a row exists exactly while it counts
-- something: a count that drops to zero removes its row. That keeps zero rows out of the queries,
-- and forget_author leaves no trace of the member here once their replies are gone.
--
-- Every change to what a reply contributes goes through the replies table (reactions reach it
-- through the reactions_count_* triggers, early deletions and reactions through the folding
-- trigger), so triggers on replies alone keep the tallies right whatever order events arrive in.

-- Standing replies and their reactions per (session, prompt, minute of created_at). Minutes serve
-- every bin width of whole minutes whose origin is on a minute boundary (local midnight is, in
-- every zone since 1972); the recap reads the replies for anything else.
CREATE TABLE tally_by_minute (
    session_id  INTEGER NOT NULL,
    prompt_id   INTEGER NOT NULL,
    minute      INTEGER NOT NULL,  -- floor(created_at / 60)
    replies     INTEGER NOT NULL,
    reactions   INTEGER NOT NULL,
    PRIMARY KEY (session_id, prompt_id, minute)
) STRICT, WITHOUT ROWID;

-- Standing replies per (session, person): "N replies written -> how many people" is one GROUP BY
-- over a row per person.
CREATE TABLE tally_by_author (
    session_id  INTEGER NOT NULL,
    platform    TEXT    NOT NULL,
    author_id   TEXT    NOT NULL,
    replies     INTEGER NOT NULL,
    PRIMARY KEY (session_id, platform, author_id)
) STRICT, WITHOUT ROWID;

-- People with standing replies per (session, prompt). There is no (person, prompt) tally to count
-- them from: replies_by_author_prompt (0002) is that grouping already, and a probe of it tells
-- whether a reply is its author's only standing one under the prompt, the one case that moves this
-- count. Keeping a (person, prompt) tally as well cost a write on every reply (bench.ingest).
-- The probes run on every insert and deletion: a later migration that drops or reorders that
-- index turns each of them into a scan of the person's replies, or of the prompt's.
CREATE TABLE tally_by_prompt (
    session_id  INTEGER NOT NULL,
    prompt_id   INTEGER NOT NULL,
    people      INTEGER NOT NULL,
    PRIMARY KEY (session_id, prompt_id)
) STRICT, WITHOUT ROWID;

-- Existing replies. floor() is spelled out (SQLite's math functions are optional); x / 60 floors
-- exactly for any REAL x, so the backfill and the triggers agree.
INSERT INTO tally_by_minute (session_id, prompt_id, minute, replies, reactions)
SELECT session_id, prompt_id,
       CAST(created_at / 60 AS INTEGER) - (created_at / 60 < CAST(created_at / 60 AS INTEGER)) AS minute,
       count(*), sum(reactions)
FROM replies WHERE deleted_at IS NULL GROUP BY session_id, prompt_id, minute;

INSERT INTO tally_by_author (session_id, platform, author_id, replies)
SELECT session_id, platform, author_id, count(*)
FROM replies WHERE deleted_at IS NULL GROUP BY session_id, platform, author_id;

INSERT INTO tally_by_prompt (session_id, prompt_id, people)
SELECT session_id, prompt_id, count(*)
FROM (SELECT DISTINCT session_id, prompt_id, platform, author_id FROM replies WHERE deleted_at IS NULL)
GROUP BY session_id, prompt_id;

-- A new reply counts first and is folded after: the folding UPDATEs fire the triggers below,
-- which take back what an early deletion or early reactions change. One trigger, because the
-- statements of a trigger run in order, while the order of two AFTER INSERT triggers is SQLite's
-- to choose. The folding is unchanged from 0001_init.sql.
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
        SELECT count(*) FROM reactions AS x
        WHERE x.platform = NEW.platform AND x.channel_id = NEW.channel_id
          AND x.message_id = NEW.message_id AND x.present = 1)
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

-- A reply's tally keys never change, and a deleted reply stays deleted: nothing in Popup makes
-- such an update, and the triggers below count on it. Refused outright rather than tallied, so a
-- later change that needs one has to come here and say how it counts.
CREATE TRIGGER replies_keep_their_place BEFORE UPDATE OF session_id, prompt_id, platform, author_id, created_at,
    deleted_at ON replies
    WHEN NEW.session_id IS NOT OLD.session_id OR NEW.prompt_id IS NOT OLD.prompt_id
      OR NEW.platform IS NOT OLD.platform OR NEW.author_id IS NOT OLD.author_id
      OR NEW.created_at IS NOT OLD.created_at
      OR (OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'a reply keeps its session, prompt, author and time, and stays deleted (migration 0003)');
END;

-- A standing reply's reactions change: only its minute's reaction count moves.
CREATE TRIGGER replies_tally_reactions AFTER UPDATE OF reactions ON replies
    WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NULL
BEGIN
    UPDATE tally_by_minute SET reactions = reactions + NEW.reactions - OLD.reactions
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id
      AND minute = CAST(OLD.created_at / 60 AS INTEGER) - (OLD.created_at / 60 < CAST(OLD.created_at / 60 AS INTEGER));
END;

-- A reply is deleted (or its early deletion folded in): it stops counting.
CREATE TRIGGER replies_tally_fall AFTER UPDATE OF deleted_at ON replies
    WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL
BEGIN
    UPDATE tally_by_minute SET replies = replies - 1, reactions = reactions - OLD.reactions
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id
      AND minute = CAST(OLD.created_at / 60 AS INTEGER) - (OLD.created_at / 60 < CAST(OLD.created_at / 60 AS INTEGER));
    DELETE FROM tally_by_minute
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id
      AND minute = CAST(OLD.created_at / 60 AS INTEGER) - (OLD.created_at / 60 < CAST(OLD.created_at / 60 AS INTEGER))
      AND replies = 0;
    UPDATE tally_by_author SET replies = replies - 1
    WHERE session_id = OLD.session_id AND platform = OLD.platform AND author_id = OLD.author_id;
    DELETE FROM tally_by_author
    WHERE session_id = OLD.session_id AND platform = OLD.platform AND author_id = OLD.author_id
      AND replies = 0;
    UPDATE tally_by_prompt SET people = people - 1
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id AND NOT EXISTS (
        SELECT 1 FROM replies AS o
        WHERE o.session_id = OLD.session_id AND o.platform = OLD.platform AND o.author_id = OLD.author_id
          AND o.prompt_id = OLD.prompt_id AND o.deleted_at IS NULL AND o.id <> NEW.id);
    DELETE FROM tally_by_prompt
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id AND people = 0;
END;

-- A reply removed outright (forget_author, a session's cascade): it stops counting. The probe
-- sees the rows a multi-row DELETE has yet to remove, so the last of them takes the person off.
CREATE TRIGGER replies_tally_delete AFTER DELETE ON replies WHEN OLD.deleted_at IS NULL
BEGIN
    UPDATE tally_by_minute SET replies = replies - 1, reactions = reactions - OLD.reactions
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id
      AND minute = CAST(OLD.created_at / 60 AS INTEGER) - (OLD.created_at / 60 < CAST(OLD.created_at / 60 AS INTEGER));
    DELETE FROM tally_by_minute
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id
      AND minute = CAST(OLD.created_at / 60 AS INTEGER) - (OLD.created_at / 60 < CAST(OLD.created_at / 60 AS INTEGER))
      AND replies = 0;
    UPDATE tally_by_author SET replies = replies - 1
    WHERE session_id = OLD.session_id AND platform = OLD.platform AND author_id = OLD.author_id;
    DELETE FROM tally_by_author
    WHERE session_id = OLD.session_id AND platform = OLD.platform AND author_id = OLD.author_id
      AND replies = 0;
    UPDATE tally_by_prompt SET people = people - 1
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id AND NOT EXISTS (
        SELECT 1 FROM replies AS o
        WHERE o.session_id = OLD.session_id AND o.platform = OLD.platform AND o.author_id = OLD.author_id
          AND o.prompt_id = OLD.prompt_id AND o.deleted_at IS NULL AND o.id <> OLD.id);
    DELETE FROM tally_by_prompt
    WHERE session_id = OLD.session_id AND prompt_id = OLD.prompt_id AND people = 0;
END;
