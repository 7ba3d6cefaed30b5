-- The web side (adapters/web): what its pages show and who may use the dashboard.

-- Posts the engine made in a session's web page (its channel, platform "web"), in order: the page
-- is rendered from these, as a chat channel shows its messages. ``key`` is the ledger's marker, so
-- a post looked for after a crash (find_post) is found rather than made twice.
CREATE TABLE web_posts (
    id          INTEGER PRIMARY KEY,
    channel_id  TEXT    NOT NULL,
    key         TEXT    NOT NULL UNIQUE,
    thread_id   TEXT    UNIQUE,
    content     TEXT    NOT NULL,  -- the neutral Message as JSON
    posted_at   REAL    NOT NULL
) STRICT;
CREATE INDEX web_posts_by_channel ON web_posts (channel_id, id);

-- One-time sign-in links for the dashboard: only a hash of the token is kept, so the database
-- alone signs nobody in. A link is used once (used_at), and not after expires_at.
CREATE TABLE web_sign_ins (
    token_hash  TEXT    PRIMARY KEY,
    member      TEXT    NOT NULL,  -- the organiser as JSON (platform, id, name, roles, admin)
    expires_at  REAL    NOT NULL,
    used_at     REAL
) STRICT, WITHOUT ROWID;

-- Plans made in the dashboard; the config's plans are not here (they stay read-only).
CREATE TABLE web_plans (
    name        TEXT    PRIMARY KEY,
    plan        TEXT    NOT NULL,  -- JSON: title, intro, recap_at, prompts [{at, text}], anonymous
    created_by  TEXT    NOT NULL,  -- "platform:user_id"
    updated_at  REAL    NOT NULL
) STRICT;

-- The day's article as the organiser edits it. Every save is a version; a published version has
-- published_at, and the newest published one is what the public page, the feed and exports show.
CREATE TABLE article_versions (
    id           INTEGER PRIMARY KEY,
    session_id   INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    markdown     TEXT    NOT NULL,
    saved_by     TEXT    NOT NULL,
    saved_at     REAL    NOT NULL,
    published_at REAL
) STRICT;
CREATE INDEX article_versions_by_session ON article_versions (session_id, id);
CREATE INDEX article_versions_published ON article_versions (published_at) WHERE published_at IS NOT NULL;
