//! What the pages show, built from snapshots and events: plain Rust with no browser in
//! it, so all of it is tested on the host. Components only draw these.

pub mod ansi;
pub mod chart;
pub mod machines;
pub mod number;
pub mod runs;
pub mod terminal;
pub mod topics;
pub mod workflow;
