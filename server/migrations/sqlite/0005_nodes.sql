-- Several nodes on one database (PostgreSQL): which node runs each unfinished run,
-- and each node's lease (storage/nodes.rs). On SQLite (one node) `node` stays NULL
-- and `nodes` empty: the same schema for both.
ALTER TABLE workflows ADD COLUMN node TEXT;
CREATE INDEX workflows_node ON workflows (node, state);
CREATE TABLE nodes (
    id TEXT PRIMARY KEY NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
