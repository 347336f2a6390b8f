//! Components shared by the pages.

pub mod activity_log;
pub mod agent_card;
pub mod artifact_gallery;
pub mod badge;
pub mod chat;
pub mod connection_indicator;
pub mod header;
pub mod metric_chart;
pub mod metrics_bar;
pub mod run_controls;
pub mod run_list;
pub mod sparkline;
pub mod stage_list;
pub mod start_form;
pub mod terminal;
pub mod toasts;
