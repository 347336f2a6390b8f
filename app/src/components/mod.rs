//! Components shared by the pages.

pub mod connection_indicator;
pub mod header;
pub mod metrics_bar;
pub mod sparkline;
