//! One file per page.

pub mod agents;
pub mod dashboard;
pub mod not_found;
pub mod topic;
pub mod topics;
pub mod workflow;
