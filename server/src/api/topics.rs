//! `POST /api/v1/publish`, `GET /api/v1/topics` and `GET /api/v1/topics/{topic}/history`.

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use crate::auth::Principal;
use crate::AppState;
use axum::extract::State;
use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {
    topic: String,
    event: String,
    data: Box<RawValue>,
}

pub async fn publish(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<impl IntoResponse, ApiError> {
    crate::hub::check_topic(&body.topic)?;
    if let Some(why) = crate::hub::publish_refusal(&who, &body.topic) {
        return Err(ApiError::forbidden(why));
    }
    let seq = state.hub.publish_raw(&body.topic, &body.event, &body.data).await?;
    Ok(Json(serde_json::json!({ "topic": body.topic, "seq": seq })))
}

pub const HISTORY_DEFAULT_LIMIT: usize = 100;
pub const HISTORY_MAX_LIMIT: usize = 1_000;

#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
}

/// `{"events": [...], "seq": N, "epoch": "..."}`, each event the exact frame the
/// WebSocket carries: the stored bytes are spliced in, not re-serialized.
pub async fn history(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(topic): ApiPath<String>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<impl IntoResponse, ApiError> {
    crate::hub::check_topic(&topic)?;
    if !who.may_subscribe(&topic) {
        return Err(ApiError::forbidden(format!("this token may not read {topic:?} (see its sub_topics)")));
    }
    let limit = q.limit.unwrap_or(HISTORY_DEFAULT_LIMIT).min(HISTORY_MAX_LIMIT);
    let page = state.hub.history(&topic, q.since, limit).await?;
    // within the byte budget (always at least one event, so a reader makes progress)
    let budget = state.http.history_response_bytes as usize;
    let mut body = String::with_capacity(64 + page.events.iter().map(|e| e.frame.len() + 1).sum::<usize>().min(budget));
    body.push_str(r#"{"events":["#);
    for (i, e) in page.events.iter().enumerate() {
        let frame = e.frame_for(&who);
        if i > 0 {
            if body.len() + frame.len() > budget {
                break;
            }
            body.push(',');
        }
        body.push_str(frame);
    }
    body.push_str(r#"],"seq":"#);
    body.push_str(&page.seq.to_string());
    body.push_str(r#","epoch":"#);
    body.push_str(&serde_json::Value::String(page.epoch).to_string());
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

pub const TOPICS_DEFAULT_LIMIT: usize = 200;
pub const TOPICS_MAX_LIMIT: usize = 1_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsQuery {
    #[serde(default)]
    prefix: String,
    limit: Option<usize>,
}

/// The topics held now that the caller may subscribe to (`TopicList`).
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiQuery(q): ApiQuery<TopicsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    if q.prefix.len() > app::protocol::MAX_TOPIC_LEN {
        return Err(ApiError::new(app::protocol::ErrorCode::BadRequest, format!("prefix is {} bytes; at most {}", q.prefix.len(), app::protocol::MAX_TOPIC_LEN)));
    }
    let limit = q.limit.unwrap_or(TOPICS_DEFAULT_LIMIT).min(TOPICS_MAX_LIMIT);
    let (topics, total) = state.hub.list_topics(&q.prefix, limit, |name| who.may_subscribe(name));
    Ok(Json(app::protocol::TopicList { topics, total: total as u64 }))
}
