-- The tallies of new replies counted once per statement, not once per row.
--
-- A row trigger upserts the same few tally rows for every reply of a batch: replies under one
-- prompt in one minute all land on one tally_by_minute row, whose every update in the transaction
-- leaves a row version the next must step over, so a batch's cost grew with its square. The
-- inbound writer now stores a batch's replies in one statement (storage/postgres/inbound.py
-- INSERT_REPLIES), and this trigger adds each tally row's share of it in one upsert.
--
-- The same counts as before: a reply stored standing (not deleted on arrival, which the BEFORE
-- INSERT fold decides) counts for its author and its minute; an author counts as a person of a
-- prompt when none of their other standing replies under it was stored before this statement.
-- Inbound transactions hold the inbound advisory lock, so no other writer's replies interleave.
DROP TRIGGER replies_tally_rise ON replies;
DROP FUNCTION replies_tally_rise();

CREATE FUNCTION replies_tally_rise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tally_by_author AS t (session_id, platform, author_id, replies)
    SELECT session_id, platform, author_id, count(*) FROM added WHERE deleted_at IS NULL
    GROUP BY session_id, platform, author_id
    ORDER BY session_id, platform, author_id
    ON CONFLICT (session_id, platform, author_id) DO UPDATE SET replies = t.replies + excluded.replies;

    INSERT INTO tally_by_minute AS t (session_id, prompt_id, minute, replies, reactions)
    SELECT session_id, prompt_id, floor(created_at / 60)::bigint, count(*), sum(reactions) FROM added
    WHERE deleted_at IS NULL
    GROUP BY session_id, prompt_id, floor(created_at / 60)::bigint
    ORDER BY 1, 2, 3
    ON CONFLICT (session_id, prompt_id, minute) DO UPDATE
    SET replies = t.replies + excluded.replies, reactions = t.reactions + excluded.reactions;

    -- A newcomer: every standing reply of theirs under the prompt is one of this statement's (an
    -- index probe per author and prompt, never a scan of the replies).
    INSERT INTO tally_by_prompt AS t (session_id, prompt_id, people)
    SELECT g.session_id, g.prompt_id, count(*) FROM (
        SELECT session_id, platform, author_id, prompt_id, count(*) AS fresh FROM added
        WHERE deleted_at IS NULL
        GROUP BY session_id, platform, author_id, prompt_id
    ) AS g
    WHERE g.fresh = (
        -- The filter, not a WHERE on deleted_at: that would let the planner take the partial
        -- index of standing replies by prompt, and walk every reply under the prompt.
        SELECT count(*) FILTER (WHERE o.deleted_at IS NULL) FROM replies AS o
        WHERE o.session_id = g.session_id AND o.platform = g.platform AND o.author_id = g.author_id
          AND o.prompt_id = g.prompt_id
    )
    GROUP BY g.session_id, g.prompt_id
    ORDER BY g.session_id, g.prompt_id
    ON CONFLICT (session_id, prompt_id) DO UPDATE SET people = t.people + excluded.people;
    RETURN NULL;
END $$;
CREATE TRIGGER replies_tally_rise AFTER INSERT ON replies
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION replies_tally_rise();

-- The same probe where a reply stops counting, through the author's index (see above).
CREATE OR REPLACE FUNCTION replies_tally_fall_of(gone replies) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tally_by_author SET replies = replies - 1
    WHERE session_id = gone.session_id AND platform = gone.platform AND author_id = gone.author_id;
    DELETE FROM tally_by_author
    WHERE session_id = gone.session_id AND platform = gone.platform AND author_id = gone.author_id
      AND replies = 0;
    UPDATE tally_by_minute SET replies = replies - 1, reactions = reactions - gone.reactions
    WHERE session_id = gone.session_id AND prompt_id = gone.prompt_id
      AND minute = floor(gone.created_at / 60)::bigint;
    DELETE FROM tally_by_minute
    WHERE session_id = gone.session_id AND prompt_id = gone.prompt_id
      AND minute = floor(gone.created_at / 60)::bigint AND replies = 0;
    IF (
        SELECT count(*) FILTER (WHERE o.deleted_at IS NULL AND o.id <> gone.id) FROM replies AS o
        WHERE o.session_id = gone.session_id AND o.platform = gone.platform AND o.author_id = gone.author_id
          AND o.prompt_id = gone.prompt_id
    ) = 0 THEN
        UPDATE tally_by_prompt SET people = people - 1
        WHERE session_id = gone.session_id AND prompt_id = gone.prompt_id;
        DELETE FROM tally_by_prompt
        WHERE session_id = gone.session_id AND prompt_id = gone.prompt_id AND people = 0;
    END IF;
END $$;
