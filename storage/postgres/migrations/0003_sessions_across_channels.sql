-- One session across many channels and platforms (issue 13), as the SQLite store has it
-- (storage/migrations/0005): join codes, channel names, the mid-day pulse, and members who link
-- their identities on two platforms.

-- The code other channels type as `/popup join CODE`. Unique while it is set; a session that has
-- ended keeps it, and the lookup only answers for sessions still running.
ALTER TABLE sessions ADD COLUMN join_code text;
CREATE UNIQUE INDEX sessions_by_join_code ON sessions (join_code) WHERE join_code IS NOT NULL;

-- When the session's channels each get a digest of the day so far (the plan's pulse_at), if ever.
ALTER TABLE sessions ADD COLUMN pulse_at double precision;

-- What the adapter called the channel when it joined ("#learning"), NULL when it could not tell,
-- and who attached it ("discord:123"; NULL for the channels the session was started in).
ALTER TABLE session_channels ADD COLUMN name text;
ALTER TABLE session_channels ADD COLUMN joined_by text;

-- Identities one member linked across platforms with `/popup link`. Every identity of a group
-- carries the same `person` (the first identity's "platform:user_id"); an identity never linked
-- has no row and is a person of its own.
CREATE TABLE identity_links (
    platform    text NOT NULL,
    user_id     text NOT NULL,
    person      text NOT NULL,
    linked_at   double precision NOT NULL,
    PRIMARY KEY (platform, user_id)
);
CREATE INDEX identity_links_by_person ON identity_links (person);

-- One-time codes handed out by `/popup link`, redeemed (and deleted) by `/popup link CODE`.
CREATE TABLE link_codes (
    code        text NOT NULL PRIMARY KEY,
    platform    text NOT NULL,
    user_id     text NOT NULL,
    created_at  double precision NOT NULL
);
