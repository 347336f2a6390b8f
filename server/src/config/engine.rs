//! The job engine's settings: where pipelines come from, how many runs at once, what
//! a stage may see of the server's environment, and the engine's limits.

use super::Switch;
use clap::Args;
use std::path::PathBuf;

/// Environment variables no stage inherits (globs, case-insensitive): the server's own
/// settings (its secret among them) and the usual names of credentials.
pub const STAGE_ENV_DENY_DEFAULT: &str = "SWITCHBOARD_*,*SECRET*,*PASSWORD*,*PASSWD*,*TOKEN*,*CREDENTIAL*,*PRIVATE_KEY*,*API_KEY*,*ACCESS_KEY*";

#[derive(Debug, Clone, Args)]
pub struct EngineSettings {
    /// Folder of pipeline definitions (`*.toml`).
    #[arg(long, env = "SWITCHBOARD_PIPELINES_DIR", default_value = "pipelines")]
    pub pipelines_dir: PathBuf,

    /// Workflows run at once; the others wait in the queue, first come first served.
    #[arg(long, env = "SWITCHBOARD_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: u64,

    /// Seconds a cancelled stage gets between SIGTERM and SIGKILL.
    #[arg(long, env = "SWITCHBOARD_CANCEL_GRACE_S", default_value_t = 5)]
    pub cancel_grace_s: u64,

    /// Inline pipelines (`POST /api/v1/workflows` with a definition: any shell
    /// command): `off` (default) or `on`. Even on, a token needs the `exec` right.
    #[arg(long, env = "SWITCHBOARD_INLINE_PIPELINES", value_enum, default_value = "off")]
    pub inline_pipelines: Switch,

    /// Environment variables stages do not inherit from the server (comma-separated
    /// globs, case-insensitive). The stage's own `env` and `SWITCHBOARD_WORKFLOW_ID`,
    /// `_STAGE_ID`, `_ARTIFACTS`, `_PIPELINES` are set after.
    #[arg(long, env = "SWITCHBOARD_STAGE_ENV_DENY", value_delimiter = ',', default_value = STAGE_ENV_DENY_DEFAULT)]
    pub stage_env_deny: Vec<String>,

    /// Most stages one pipeline may have.
    #[arg(long, env = "SWITCHBOARD_MAX_STAGES", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_stages: u64,

    /// Most runs waiting in the queue; one more is refused with 429 and `Retry-After`.
    #[arg(long, env = "SWITCHBOARD_MAX_QUEUED_RUNS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_queued_runs: u64,

    /// Terminal output stored per run, in bytes; past it, one notice, and the bytes
    /// dropped are counted in the stage's status.
    #[arg(long, env = "SWITCHBOARD_MAX_OUTPUT_BYTES", default_value_t = 268_435_456, value_parser = clap::value_parser!(u64).range(1_024..))]
    pub max_output_bytes: u64,

    /// Finished runs kept in memory (the newest); older ones are read from the database.
    #[arg(long, env = "SWITCHBOARD_FINISHED_RUNS_IN_MEMORY", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub finished_runs_in_memory: u64,

    /// Seconds a finished run stays in memory at most.
    #[arg(long, env = "SWITCHBOARD_FINISHED_RUN_MEMORY_S", default_value_t = 600)]
    pub finished_run_memory_s: u64,

    /// Longest chat message, in bytes.
    #[arg(long, env = "SWITCHBOARD_MAX_CHAT_BYTES", default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub max_chat_bytes: u64,
}
