-- One Popup for many workspaces (sessions/installs.py): the app's installations with their bots,
-- the one-time states of install flows under way, and which workspace each channel is in.

-- One row per installation: a workspace (team_id), or a whole org (org_wide = 1, team_id ''). The
-- bot token is kept as the adapter sealed it (encrypted unless the operator chose plain storage).
CREATE TABLE installs (
    platform        TEXT    NOT NULL,
    enterprise_id   TEXT    NOT NULL,  -- '' when not on an org
    team_id         TEXT    NOT NULL,  -- '' for an org-wide install
    org_wide        INTEGER NOT NULL CHECK (org_wide IN (0, 1)),
    app_id          TEXT    NOT NULL,
    bot_id          TEXT    NOT NULL,
    bot_user_id     TEXT    NOT NULL,
    bot_token       TEXT    NOT NULL,
    scopes          TEXT    NOT NULL,
    installed_by    TEXT    NOT NULL,
    installed_at    REAL    NOT NULL,
    team_name       TEXT    NOT NULL,
    enterprise_name TEXT    NOT NULL,
    PRIMARY KEY (platform, enterprise_id, team_id)
) STRICT, WITHOUT ROWID;
-- A workspace's own install is found by its team alone (a slash command may not name the org).
CREATE INDEX installs_by_team ON installs (platform, team_id) WHERE team_id <> '';

-- States handed to browsers starting an install: each is taken once, before it expires.
CREATE TABLE install_states (
    state       TEXT    PRIMARY KEY,
    expires_at  REAL    NOT NULL
) STRICT, WITHOUT ROWID;

-- The workspace a channel is in, learned from commands and events arriving from it: posting there
-- takes that workspace's token, in whichever process posts.
CREATE TABLE channel_workspaces (
    platform       TEXT    NOT NULL,
    channel_id     TEXT    NOT NULL,
    enterprise_id  TEXT    NOT NULL,
    team_id        TEXT    NOT NULL,
    PRIMARY KEY (platform, channel_id)
) STRICT, WITHOUT ROWID;
