//! Components shared by the pages.

pub mod connection_indicator;
pub mod header;
