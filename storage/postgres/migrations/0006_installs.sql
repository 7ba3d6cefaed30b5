-- One Popup for many workspaces (sessions/installs.py), as the SQLite store's
-- storage/migrations/0007: the app's installations with their bots, the one-time states of install
-- flows under way, and which workspace each channel is in. Times are epoch seconds.

-- One row per installation: a workspace (team_id), or a whole org (org_wide = 1, team_id ''). The bot
-- token is kept as the adapter sealed it (encrypted unless the operator chose plain storage).
CREATE TABLE installs (
    platform        text    NOT NULL,
    enterprise_id   text    NOT NULL,  -- '' when not on an org
    team_id         text    NOT NULL,  -- '' for an org-wide install
    org_wide        integer NOT NULL CHECK (org_wide IN (0, 1)),  -- 0/1, as on SQLite (popup copy)
    app_id          text    NOT NULL,
    bot_id          text    NOT NULL,
    bot_user_id     text    NOT NULL,
    bot_token       text    NOT NULL,
    scopes          text    NOT NULL,
    installed_by    text    NOT NULL,
    installed_at    double precision NOT NULL,
    team_name       text    NOT NULL,
    enterprise_name text    NOT NULL,
    PRIMARY KEY (platform, enterprise_id, team_id)
);
-- A workspace's own install is found by its team alone (a slash command may not name the org).
CREATE INDEX installs_by_team ON installs (platform, team_id) WHERE team_id <> '';

-- States handed to browsers starting an install: each is taken once, before it expires.
CREATE TABLE install_states (
    state       text    PRIMARY KEY,
    expires_at  double precision NOT NULL
);

-- The workspace a channel is in, learned from commands and events arriving from it: posting there
-- takes that workspace's token, in whichever process posts.
CREATE TABLE channel_workspaces (
    platform       text    NOT NULL,
    channel_id     text    NOT NULL,
    enterprise_id  text    NOT NULL,
    team_id        text    NOT NULL,
    PRIMARY KEY (platform, channel_id)
);
