-- Agents: who executes what. A run may have an executor (an external run's stages are
-- all run by it); a stage records the agent that runs it, which attempt this is, and
-- the last report of that agent it applied (so that after a restart the agent resends
-- from the next one, and nothing is applied twice).
ALTER TABLE workflows ADD COLUMN executor TEXT;
ALTER TABLE stages ADD COLUMN agent TEXT;
ALTER TABLE stages ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stages ADD COLUMN applied_seq INTEGER NOT NULL DEFAULT 0;
