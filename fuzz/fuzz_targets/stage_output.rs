//! A stage's stdout, cut into lines as the engine reads them (server/src/engine/process.rs
//! `read_lines`), through the stage output protocol parser (engine/output.rs), with the
//! promises its callers rely on checked.
#![no_main]

use libfuzzer_sys::fuzz_target;
use server::engine::output::{parse_line, OutputLine};

/// `MAX_LINE` of engine/process.rs: a longer line is cut there.
const MAX_LINE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    for mut raw in data.split(|b| *b == b'\n') {
        while let [rest @ .., b'\r'] = raw {
            raw = rest;
        }
        let line = String::from_utf8_lossy(&raw[..raw.len().min(MAX_LINE)]);
        match parse_line(&line) {
            OutputLine::Progress { fraction, message } => {
                assert!((0.0..=1.0).contains(&fraction), "{line:?}: fraction {fraction}");
                assert!(message.as_deref().is_none_or(|m| !m.is_empty() && m.trim() == m), "{line:?}: message {message:?}");
            }
            OutputLine::Metrics { values, .. } => {
                assert!(!values.is_empty(), "{line:?}: no values");
                for (name, value) in &values {
                    assert!(!name.is_empty() && value.is_finite(), "{line:?}: {name:?}={value}");
                }
            }
            OutputLine::Artifact { path, .. } => {
                assert!(!path.is_empty() && !path.contains(char::is_whitespace), "{line:?}: path {path:?}");
            }
            OutputLine::Log { .. } | OutputLine::Text => {}
        }
    }
});
