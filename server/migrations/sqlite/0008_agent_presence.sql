-- What each node knows of the agents it has seen (several nodes on PostgreSQL,
-- storage/presence.rs): a stage that needs an agent connected to another node moves
-- its run there, and every node lists every agent. One row per agent and node; a
-- node's rows go with its lease. On SQLite (one node) it stays empty.
CREATE TABLE agent_presence (
    name TEXT NOT NULL,
    node TEXT NOT NULL,
    connected BIGINT NOT NULL,
    status TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (name, node)
);
CREATE INDEX agent_presence_node ON agent_presence (node);
