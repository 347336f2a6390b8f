-- Facts about the database itself: whether the last process shut down cleanly.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
