-- The tallies of new replies counted once per statement, not once per row.
--
-- A row trigger upserted the same few tally rows for every reply of a batch: replies under one
-- prompt in one minute all land on one tally_by_minute row, whose every update in the transaction
-- leaves a row version the next must step over, so a batch's cost grew with its square. The
-- inbound writer now stores a batch's replies in one statement (storage/postgres/inbound.py
-- INSERT_REPLIES), and this trigger adds each tally row's share of it in one upsert.
--
-- Whether an author is new to a prompt was a probe of the replies, whose plan depended on the
-- table's statistics: on a young table the planner took an index by prompt and walked every reply
-- under it. It is now a tally of its own (standing replies per author and prompt), looked up by its
-- key: the author counts as a person of the prompt while that row exists.
--
-- The same counts as before. Inbound transactions hold the inbound advisory lock, so no other
-- writer's replies interleave with a statement's.
CREATE TABLE tally_by_author_prompt (
    session_id  bigint  NOT NULL,
    platform    text    NOT NULL,
    author_id   text    NOT NULL,
    prompt_id   bigint  NOT NULL,
    replies     integer NOT NULL,
    PRIMARY KEY (session_id, platform, author_id, prompt_id)
);
INSERT INTO tally_by_author_prompt (session_id, platform, author_id, prompt_id, replies)
SELECT session_id, platform, author_id, prompt_id, count(*) FROM replies WHERE deleted_at IS NULL
GROUP BY session_id, platform, author_id, prompt_id;

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

    -- A row inserted here (xmax = 0; an updated one carries this transaction's id) is an author new
    -- to the prompt.
    WITH counted AS (
        INSERT INTO tally_by_author_prompt AS t (session_id, platform, author_id, prompt_id, replies)
        SELECT session_id, platform, author_id, prompt_id, count(*) FROM added WHERE deleted_at IS NULL
        GROUP BY session_id, platform, author_id, prompt_id
        ORDER BY session_id, platform, author_id, prompt_id
        ON CONFLICT (session_id, platform, author_id, prompt_id) DO UPDATE SET replies = t.replies + excluded.replies
        RETURNING t.session_id, t.prompt_id, t.xmax = 0 AS newcomer
    )
    INSERT INTO tally_by_prompt AS t (session_id, prompt_id, people)
    SELECT session_id, prompt_id, count(*) FROM counted WHERE newcomer
    GROUP BY session_id, prompt_id
    ORDER BY session_id, prompt_id
    ON CONFLICT (session_id, prompt_id) DO UPDATE SET people = t.people + excluded.people;
    RETURN NULL;
END $$;
CREATE TRIGGER replies_tally_rise AFTER INSERT ON replies
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION replies_tally_rise();

-- A reply stops counting: its author leaves the prompt with the last of their standing replies.
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
    UPDATE tally_by_author_prompt SET replies = replies - 1
    WHERE session_id = gone.session_id AND platform = gone.platform AND author_id = gone.author_id
      AND prompt_id = gone.prompt_id;
    DELETE FROM tally_by_author_prompt
    WHERE session_id = gone.session_id AND platform = gone.platform AND author_id = gone.author_id
      AND prompt_id = gone.prompt_id AND replies = 0;
    IF FOUND THEN  -- the author's last standing reply under the prompt
        UPDATE tally_by_prompt SET people = people - 1
        WHERE session_id = gone.session_id AND prompt_id = gone.prompt_id;
        DELETE FROM tally_by_prompt
        WHERE session_id = gone.session_id AND prompt_id = gone.prompt_id AND people = 0;
    END IF;
END $$;
