//! A pipeline file's text (the pipelines folder) through the TOML parser and its
//! validation (server/src/engine/pipeline.rs `Pipeline::from_toml`); a pipeline it
//! accepts must survive the JSON round trip a run's row in the database takes
//! (engine/stored.rs), and its redaction.
#![no_main]

#[path = "shared/pipeline_check.rs"]
mod pipeline_check;

use libfuzzer_sys::fuzz_target;
use server::engine::pipeline::Pipeline;

fuzz_target!(|data: &[u8]| {
    // the folder is read with read_to_string: a file that is not UTF-8 never gets here
    let Ok(text) = std::str::from_utf8(data) else { return };
    pipeline_check::check(Pipeline::from_toml(text, pipeline_check::MAX_STAGES));
});
