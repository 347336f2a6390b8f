//! `GET /api/v1/workflows`: a page of runs, newest first, with the `seq` and `epoch` of
//! `coordinator` at that instant (taken first: a summary published after it is above
//! `seq`, so nothing falls in between). `limit` (default 50, at most 500), `cursor` (the
//! `next_cursor` of the page before), `state` (one or more, comma-separated) and
//! `pipeline` filter it; a value that does not parse gets 400 naming it. Only runs the
//! principal may see are listed.

use super::error::{ApiError, ApiQuery};
use crate::auth::Principal;
use crate::storage::reads::{Cursor, ListFilter};
use crate::AppState;
use app::protocol::{ErrorCode, WorkflowList, WorkflowState, COORDINATOR_TOPIC};
use axum::extract::State;
use axum::{Extension, Json};
use base64::Engine as _;
use serde::Deserialize;

pub const LIST_DEFAULT_LIMIT: usize = 50;
pub const LIST_MAX_LIMIT: usize = 500;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<usize>,
    cursor: Option<String>,
    state: Option<String>,
    pipeline: Option<String>,
}

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

/// A cursor is the last run of a page, `created_at:id`, in URL-safe base64.
pub fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", c.created_at, c.id))
}

pub fn decode_cursor(text: &str) -> Result<Cursor, ApiError> {
    let invalid = || bad(format!("cursor {text:?} is not one this server gave (use a page's `next_cursor` as it is)"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let (at, id) = raw.split_once(':').ok_or_else(invalid)?;
    let created_at = at.parse().map_err(|_| invalid())?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(invalid());
    }
    Ok(Cursor { created_at, id: id.to_owned() })
}

#[doc(hidden)] // public for the fuzz target `queries`
pub fn filter(q: &ListQuery) -> Result<ListFilter, ApiError> {
    let mut states = Vec::new();
    for name in q.state.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        let parsed: Result<WorkflowState, _> = serde_json::from_value(serde_json::Value::String(name.to_owned()));
        if parsed.is_err() {
            return Err(bad(format!(
                "state {name:?} is not a workflow state (pending, running, paused, waiting_confirmation, completed, failed, cancelled)"
            )));
        }
        states.push(name.to_owned());
    }
    Ok(ListFilter { states, pipeline: q.pipeline.clone().filter(|p| !p.is_empty()) })
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<WorkflowList>, ApiError> {
    let limit = q.limit.unwrap_or(LIST_DEFAULT_LIMIT);
    if limit == 0 || limit > LIST_MAX_LIMIT {
        return Err(bad(format!("limit {limit} must be 1 to {LIST_MAX_LIMIT}")));
    }
    let filter = filter(&q)?;
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let (seq, epoch) = state.hub.position(COORDINATOR_TOPIC).await?;
    let page = state.engine.list(&filter, cursor.as_ref(), limit).await?;
    // a page holds only what the principal may see: filtered after paging, it may be
    // shorter than `limit`, and `next_cursor` still goes on from where it stopped
    let workflows = page.runs.into_iter().filter(|r| who.may_subscribe(&format!("workflow:{}", r.id))).collect();
    Ok(Json(WorkflowList { workflows, seq, epoch, next_cursor: page.next.as_ref().map(encode_cursor) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_named() {
        let c = Cursor { created_at: 1_700_000_000_123, id: "0a1b2c3d4e5f".into() };
        assert_eq!(decode_cursor(&encode_cursor(&c)).unwrap(), c);
        for bad in ["!!", "bm90LWEtY3Vyc29y", ""] {
            let e = decode_cursor(bad).unwrap_err();
            assert!(e.message.contains(bad), "{}", e.message);
        }
    }
}
