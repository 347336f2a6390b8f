-- Runs, their stages, and the durable event log of every workflow:* topic.
CREATE TABLE workflows (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    pipeline    TEXT NOT NULL,   -- the definition, JSON
    state       TEXT NOT NULL,
    error       TEXT,
    epoch       TEXT NOT NULL,   -- of the run's topic: seqs stay meaningful across restarts
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);

CREATE TABLE stages (
    workflow_id TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    id          TEXT NOT NULL,
    status      TEXT NOT NULL,
    progress    REAL NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    exit_code   INTEGER,
    error       TEXT,
    PRIMARY KEY (workflow_id, idx)
);

CREATE TABLE events (
    topic TEXT NOT NULL,
    seq   INTEGER NOT NULL,
    frame TEXT NOT NULL,          -- the exact `event` message subscribers received
    PRIMARY KEY (topic, seq)
) WITHOUT ROWID;
