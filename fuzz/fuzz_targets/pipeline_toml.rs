//! A pipeline file's text (the pipelines folder) through the TOML parser and its
//! validation (server/src/engine/pipeline.rs `Pipeline::from_toml`); a pipeline it
//! accepts must survive the JSON round trip a run's row in the database takes
//! (engine/stored.rs), and its redaction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::engine::pipeline::Pipeline;

/// `--max-stages`' default (SWITCHBOARD_MAX_STAGES).
const MAX_STAGES: usize = 256;

fuzz_target!(|data: &[u8]| {
    // the folder is read with read_to_string: a file that is not UTF-8 never gets here
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Pipeline::from_toml(text, MAX_STAGES) {
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
