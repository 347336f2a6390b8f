//! An inline pipeline, as `POST /api/v1/workflows` carries it in `pipeline`, through the
//! JSON parser and its validation (server/src/engine/pipeline.rs `Pipeline::from_json`,
//! called by `Engine::pipeline_of`); a pipeline it accepts must survive the JSON round
//! trip a run's row in the database takes (engine/stored.rs), and its redaction.
#![no_main]

#[path = "shared/pipeline_check.rs"]
mod pipeline_check;

use libfuzzer_sys::fuzz_target;
use server::engine::pipeline::Pipeline;

fuzz_target!(|data: &[u8]| {
    // the body is parsed into a `serde_json::Value` first (the `pipeline` field)
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    pipeline_check::check(Pipeline::from_json(value, pipeline_check::MAX_STAGES));
});
