//! Run ids: the server's (12 hex digits) and those a caller chooses (`demo-project`),
//! which must be valid topic parts and never used before, not even by a pruned run.

use super::{Engine, EngineError};

pub(super) fn new_run_id() -> String {
    format!("{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// What a run id a caller chooses must be.
pub const RUN_ID_RULE: &str = "1 to 64 of a-z, 0-9, '_', '.', '-', starting with a letter or digit";

pub fn valid_run_id(id: &str) -> bool {
    crate::engine::pipeline::valid_agent_name(id) && id.starts_with(|c: char| c.is_ascii_alphanumeric())
}

impl Engine {
    /// An id a caller asked for: valid, and never used (not even by a pruned run).
    pub(super) async fn claim_id(&self, id: String) -> Result<String, EngineError> {
        if !valid_run_id(&id) {
            return Err(EngineError::BadRequest(format!("id: {id:?} is not a run id ({RUN_ID_RULE})")));
        }
        if self.entry(&id).is_some() || self.inner.reader.id_taken(&id).await? {
            return Err(EngineError::Conflict(format!("id: a workflow {id:?} exists already (or existed: ids are never reused)")));
        }
        Ok(id)
    }
}
