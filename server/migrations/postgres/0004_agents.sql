-- Agents: a run's executor; a stage's agent, attempt and the last report applied.
ALTER TABLE workflows ADD COLUMN executor TEXT;
ALTER TABLE stages ADD COLUMN agent TEXT;
ALTER TABLE stages ADD COLUMN attempt BIGINT NOT NULL DEFAULT 0;
ALTER TABLE stages ADD COLUMN applied_seq BIGINT NOT NULL DEFAULT 0;
