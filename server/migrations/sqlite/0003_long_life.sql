-- Each durable topic's epoch, owned by the topic log (it survives restarts and is
-- renewed after a crash); runs pruned by retention, so asking for one says so; the
-- bytes of terminal output a stage dropped past the per-run cap; indexes for paging.
CREATE TABLE topics (
    name  TEXT PRIMARY KEY NOT NULL,
    epoch TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO topics (name, epoch) SELECT 'workflow:' || id, epoch FROM workflows;

CREATE TABLE pruned (
    id        TEXT PRIMARY KEY NOT NULL,
    pruned_at INTEGER NOT NULL
) WITHOUT ROWID;

ALTER TABLE stages ADD COLUMN output_dropped_bytes INTEGER NOT NULL DEFAULT 0;

CREATE INDEX workflows_by_created ON workflows (created_at DESC, id DESC);
CREATE INDEX workflows_by_state ON workflows (state, created_at DESC, id DESC);
CREATE INDEX workflows_by_name ON workflows (name, created_at DESC, id DESC);
CREATE INDEX workflows_by_finished ON workflows (finished_at);
