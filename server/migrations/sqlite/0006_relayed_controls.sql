-- Controls sent to a node for a run it owns, by the node that received them
-- (storage/relay.rs): taken and deleted by that node, answered with a NOTIFY.
CREATE TABLE relayed_controls (
    id TEXT PRIMARY KEY NOT NULL,
    node TEXT NOT NULL,
    reply_to TEXT NOT NULL,
    run TEXT NOT NULL,
    op TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX relayed_controls_node ON relayed_controls (node);
