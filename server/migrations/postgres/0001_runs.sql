-- The schema of ../sqlite, version for version, in PostgreSQL's types: runs, their
-- stages, and the durable event log of every workflow:* topic.
CREATE TABLE workflows (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    pipeline    TEXT NOT NULL,   -- the definition, JSON
    state       TEXT NOT NULL,
    error       TEXT,
    epoch       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT
);

CREATE TABLE stages (
    workflow_id TEXT NOT NULL REFERENCES workflows(id) ON DELETE CASCADE,
    idx         BIGINT NOT NULL,
    id          TEXT NOT NULL,
    status      TEXT NOT NULL,
    progress    DOUBLE PRECISION NOT NULL,
    started_at  BIGINT,
    finished_at BIGINT,
    exit_code   BIGINT,
    error       TEXT,
    PRIMARY KEY (workflow_id, idx)
);

CREATE TABLE events (
    topic TEXT NOT NULL,
    seq   BIGINT NOT NULL,
    frame TEXT NOT NULL,          -- the exact `event` message subscribers received
    PRIMARY KEY (topic, seq)
);
