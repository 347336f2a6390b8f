//! How the engine is set up: limits, folders, and this node's id in a cluster.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub concurrency: usize,
    pub cancel_grace: Duration,
    pub runs_dir: PathBuf,
    pub pipelines_dir: PathBuf,
    /// Whether inline pipelines (any shell command) may be started at all.
    pub inline_pipelines: bool,
    /// Globs of the server's environment variables no stage inherits.
    pub stage_env_deny: Vec<String>,
    pub max_stages: usize,
    pub max_queued_runs: usize,
    pub max_chat_bytes: usize,
    /// Terminal output stored per run, in bytes.
    pub max_output_bytes: u64,
    /// Finished runs kept in memory: the newest this many, for at most this long.
    pub finished_in_memory: usize,
    pub finished_memory_for: Duration,
    /// This node's id when several share one PostgreSQL (storage::nodes); None alone.
    pub node: Option<String>,
}

impl EngineConfig {
    pub fn from_settings(s: &crate::config::EngineSettings, runs_dir: PathBuf) -> EngineConfig {
        EngineConfig {
            concurrency: s.concurrency as usize,
            cancel_grace: Duration::from_secs(s.cancel_grace_s),
            runs_dir,
            pipelines_dir: s.pipelines_dir.clone(),
            inline_pipelines: s.inline_pipelines.is_on(),
            stage_env_deny: s.stage_env_deny.clone(),
            max_stages: s.max_stages as usize,
            max_queued_runs: s.max_queued_runs as usize,
            max_chat_bytes: s.max_chat_bytes as usize,
            max_output_bytes: s.max_output_bytes,
            finished_in_memory: s.finished_runs_in_memory as usize,
            finished_memory_for: Duration::from_secs(s.finished_run_memory_s),
            node: None,
        }
    }
}
