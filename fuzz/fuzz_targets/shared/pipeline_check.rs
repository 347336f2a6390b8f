//! What both pipeline targets check of a parse: an error prints; an accepted pipeline
//! survives the JSON round trip a run's row in the database takes (engine/stored.rs),
//! and its redaction.

use server::engine::pipeline::Pipeline;

/// `--max-stages`' default (SWITCHBOARD_MAX_STAGES).
pub const MAX_STAGES: usize = 256;

pub fn check<E: std::fmt::Display>(parsed: Result<Pipeline, E>) {
    match parsed {
        Err(e) => {
            let _ = e.to_string();
        }
        Ok(p) => {
            let stored = serde_json::to_string(&p).expect("a pipeline serializes");
            let restored: Pipeline = serde_json::from_str(&stored).expect("a stored pipeline reads back");
            assert_eq!(restored, p, "{stored}");
            let _ = p.redacted();
        }
    }
}
