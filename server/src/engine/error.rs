//! What an engine call can fail with, and the protocol's error code for each.

use super::pipeline::PipelineError;
use app::protocol::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no workflow {0:?}")]
    NotFound(String),
    #[error("workflow {id:?} was pruned (older than the retention period) at {at}")]
    Pruned { id: String, at: String },
    #[error("no pipeline named {0:?}")]
    NoPipeline(String),
    #[error("invalid pipeline: {0}")]
    Invalid(#[from] PipelineError),
    #[error("no stage {stage:?} in workflow {workflow:?}")]
    NoStage { workflow: String, stage: String },
    #[error("{0}")]
    Conflict(String),
    #[error("cannot prepare the run's folder: {0}")]
    Io(String),
    #[error("the queue already holds {0} waiting runs, the most allowed (SWITCHBOARD_MAX_QUEUED_RUNS): retry later")]
    QueueFull(usize),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the run store cannot be read: {0}")]
    Storage(String),
    /// Writes to the database fail now (a full disk, say): no new run is taken, since
    /// its 201 could not mean it is stored.
    #[error("the database is not taking writes ({0}): the run was not started; retry once GET /healthz says ok")]
    Unwritable(String),
    #[error("{0}")]
    AgentOffline(String),
    /// The answer of the node a control was relayed to.
    #[error("{message}")]
    Relayed { code: ErrorCode, message: String },
    #[error("{0}")]
    NodeUnreachable(String),
}

impl EngineError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::NotFound(_) | EngineError::Pruned { .. } | EngineError::NoPipeline(_) | EngineError::NoStage { .. } => {
                ErrorCode::NotFound
            }
            EngineError::Invalid(_) | EngineError::BadRequest(_) => ErrorCode::BadRequest,
            EngineError::Conflict(_) => ErrorCode::Conflict,
            EngineError::Io(_) | EngineError::Storage(_) | EngineError::Unwritable(_) => ErrorCode::Internal,
            EngineError::QueueFull(_) => ErrorCode::RateLimited,
            EngineError::Forbidden(_) => ErrorCode::Forbidden,
            EngineError::AgentOffline(_) => ErrorCode::AgentOffline,
            EngineError::Relayed { code, .. } => *code,
            EngineError::NodeUnreachable(_) => ErrorCode::Internal,
        }
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        EngineError::Storage(e.to_string())
    }
}
