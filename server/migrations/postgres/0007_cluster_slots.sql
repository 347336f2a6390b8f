-- The cluster-wide concurrency limit (--cluster-concurrency, storage/slots.rs): one
-- row per run that holds a slot, and the node that runs it.
CREATE TABLE cluster_slots (
    run TEXT PRIMARY KEY NOT NULL,
    node TEXT NOT NULL,
    taken_at BIGINT NOT NULL
);
CREATE INDEX cluster_slots_node ON cluster_slots (node);
