"""The executor's side: the agent connection, the report outbox, stages and runs."""
