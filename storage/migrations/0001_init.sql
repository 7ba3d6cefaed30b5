-- Popup's first schema. Times are UTC seconds since the epoch (REAL).
--
-- Inbound events are keyed by the platform's own message identity and made idempotent and
-- order-independent here, in the schema: an edit, deletion or reaction that arrives before its
-- message waits in its own table, and the triggers fold it into the reply when the reply lands.
-- So every inbound event is one INSERT, safe to replay, and batches can use executemany.

CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    plan_name   TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    intro       TEXT    NOT NULL,
    timezone    TEXT    NOT NULL,
    state       TEXT    NOT NULL
        CHECK (state IN ('scheduled', 'running', 'closing', 'closed', 'cancelled', 'failed')),
    anonymous   INTEGER NOT NULL CHECK (anonymous IN (0, 1)),
    started_by  TEXT    NOT NULL,
    started_at  REAL    NOT NULL,
    recap_at    REAL    NOT NULL,
    closed_at   REAL
) STRICT;

CREATE TABLE session_channels (
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    platform    TEXT    NOT NULL,
    channel_id  TEXT    NOT NULL,
    PRIMARY KEY (session_id, platform, channel_id)
) STRICT;
CREATE INDEX session_channels_by_channel ON session_channels (platform, channel_id);

CREATE TABLE prompts (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    due_at      REAL    NOT NULL,
    state       TEXT    NOT NULL
        CHECK (state IN ('pending', 'posting', 'posted', 'missed', 'skipped')),
    posted_at   REAL,
    UNIQUE (session_id, position)
) STRICT;

-- The outbound ledger: one row per intended post, written before the post is attempted.
CREATE TABLE posts (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    prompt_id   INTEGER REFERENCES prompts (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    platform    TEXT    NOT NULL,
    channel_id  TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    message_id  TEXT,
    thread_id   TEXT,
    thread_channel_id TEXT,
    posted_at   REAL,
    UNIQUE (session_id, key, platform, channel_id)
) STRICT;
CREATE UNIQUE INDEX posts_by_thread ON posts (platform, thread_id) WHERE thread_id IS NOT NULL;

CREATE TABLE replies (
    id          INTEGER PRIMARY KEY,
    session_id  INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    prompt_id   INTEGER NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    platform    TEXT    NOT NULL,
    channel_id  TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    author_id   TEXT    NOT NULL,
    author_name TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    created_at  REAL    NOT NULL,
    edited_at   REAL,
    deleted_at  REAL,
    reactions   INTEGER NOT NULL DEFAULT 0,
    edits       INTEGER NOT NULL DEFAULT 0,
    UNIQUE (platform, channel_id, message_id)
) STRICT;
CREATE INDEX replies_by_prompt_time ON replies (session_id, prompt_id, created_at);
CREATE INDEX replies_by_author ON replies (session_id, platform, author_id);

-- Every edit ever seen, newest by the platform's edit time wins. Keyed by message identity so an
-- edit that overtakes its message is kept until the message arrives.
CREATE TABLE reply_edits (
    platform    TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    edited_at   REAL NOT NULL,
    text        TEXT NOT NULL,
    PRIMARY KEY (platform, channel_id, message_id, edited_at)
) STRICT, WITHOUT ROWID;

-- Deletions, also of messages not seen yet: a deletion that arrives first still wins.
CREATE TABLE deletions (
    platform    TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    deleted_at  REAL NOT NULL,
    PRIMARY KEY (platform, channel_id, message_id)
) STRICT, WITHOUT ROWID;

-- One row per (message, member, emoji); the newest change wins, so a redelivered or reordered
-- add/remove cannot flip the state back.
CREATE TABLE reactions (
    platform    TEXT    NOT NULL,
    channel_id  TEXT    NOT NULL,
    message_id  TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    emoji       TEXT    NOT NULL,
    present     INTEGER NOT NULL CHECK (present IN (0, 1)),
    changed_at  REAL    NOT NULL,
    PRIMARY KEY (platform, channel_id, message_id, user_id, emoji)
) STRICT, WITHOUT ROWID;

-- Platform delivery ids (Slack event_id) already taken in.
CREATE TABLE inbound_events (
    platform    TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    seen_at     REAL NOT NULL,
    PRIMARY KEY (platform, delivery_id)
) STRICT, WITHOUT ROWID;

-- Fold whatever arrived early into a newly stored reply (each step a primary-key probe).
CREATE TRIGGER replies_fold_early_events AFTER INSERT ON replies
BEGIN
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

CREATE TRIGGER reply_edits_apply AFTER INSERT ON reply_edits
BEGIN
    UPDATE replies SET
        edits = edits + 1,
        text = CASE WHEN edited_at IS NULL OR edited_at < NEW.edited_at THEN NEW.text ELSE text END,
        edited_at = max(coalesce(edited_at, NEW.edited_at), NEW.edited_at)
    WHERE platform = NEW.platform AND channel_id = NEW.channel_id AND message_id = NEW.message_id;
END;

CREATE TRIGGER deletions_apply AFTER INSERT ON deletions
BEGIN
    UPDATE replies SET deleted_at = NEW.deleted_at
    WHERE platform = NEW.platform AND channel_id = NEW.channel_id AND message_id = NEW.message_id
      AND deleted_at IS NULL;
END;

CREATE TRIGGER reactions_count_insert AFTER INSERT ON reactions WHEN NEW.present = 1
BEGIN
    UPDATE replies SET reactions = reactions + 1
    WHERE platform = NEW.platform AND channel_id = NEW.channel_id AND message_id = NEW.message_id;
END;

CREATE TRIGGER reactions_count_update AFTER UPDATE OF present ON reactions
    WHEN NEW.present <> OLD.present
BEGIN
    UPDATE replies SET reactions = reactions + (CASE WHEN NEW.present = 1 THEN 1 ELSE -1 END)
    WHERE platform = NEW.platform AND channel_id = NEW.channel_id AND message_id = NEW.message_id;
END;
