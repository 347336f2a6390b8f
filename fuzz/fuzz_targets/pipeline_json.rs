//! An inline pipeline, as `POST /api/v1/workflows` carries it in `pipeline`, through the
//! JSON parser and its validation (server/src/engine/pipeline.rs `Pipeline::from_json`,
//! called by `Engine::pipeline_of`); a pipeline it accepts must survive the JSON round
//! trip a run's row in the database takes (engine/stored.rs), and its redaction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::engine::pipeline::Pipeline;

/// `--max-stages`' default (SWITCHBOARD_MAX_STAGES).
const MAX_STAGES: usize = 256;

fuzz_target!(|data: &[u8]| {
    // the body is parsed into a `serde_json::Value` first (the `pipeline` field)
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    match Pipeline::from_json(value, MAX_STAGES) {
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
});
