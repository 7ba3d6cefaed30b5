-- Several processes on one database (sessions/cluster.py): the process that runs a session's next
-- step (its opening, a prompt, the recap) holds the session's lease until expires_at, by the
-- database's clock, so no two processes post the same thing and a dead one's work is taken over
-- once its lease runs out.
CREATE TABLE session_leases (
    session_id  bigint PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    holder      text   NOT NULL,
    expires_at  double precision NOT NULL
);
