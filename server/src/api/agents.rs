//! The agents' doors: `GET /api/v1/agents/connect` (the WebSocket an executor holds),
//! `POST /api/v1/workflows/{id}/reports` (reports over HTTP, for a backend that reports
//! with one request per tick), and `PUT /api/v1/workflows/{id}/artifacts/{name}` (an
//! artifact file, size-capped). Each needs the `agent` right, and a report or an upload
//! only for work the agent was given.

use super::error::{ApiError, ApiJson, ApiPath};
use crate::agents::reports::Refusal;
use crate::auth::Principal;
use crate::AppState;
use app::protocol::{ErrorCode, ReportBatch, ReportsApplied};
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

fn needs_agent_right(who: &Principal) -> Result<(), ApiError> {
    if who.rights.agent {
        Ok(())
    } else {
        Err(ApiError::forbidden("this token may not act as an agent (it lacks the `agent` right)"))
    }
}

pub async fn connect(State(state): State<AppState>, Extension(who): Extension<Principal>, ws: WebSocketUpgrade) -> Result<Response, ApiError> {
    needs_agent_right(&who)?;
    let registry = state.engine.registry().clone();
    let max = state.agents.max_report_bytes as usize;
    let tracker = state.tracker.clone();
    Ok(ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| tracker.track_future(crate::agents::door::serve(socket, registry, who))))
}

/// What a refusal is over HTTP: 404 for what does not exist, 409 for what is not
/// running (or a gap), 403 for someone else's work.
async fn refusal(state: &AppState, r: Refusal) -> ApiError {
    match r {
        Refusal::NotRunning(key) => match state.engine.stage_state(&key.run, &key.stage).await {
            Err(e) => ApiError::from(e),
            Ok(state) => ApiError::new(
                ErrorCode::Conflict,
                format!("stage {:?} of run {:?} is {} (attempt {} is not running): reports are taken while it runs", key.stage, key.run, state, key.attempt),
            ),
        },
        Refusal::NotYours { key, agent } => ApiError::forbidden(format!("stage {:?} of run {:?} is run by {agent:?}, not by this token", key.stage, key.run)),
        Refusal::Gap { key, expected } => {
            let mut e = ApiError::new(ErrorCode::Conflict, format!("reports of stage {:?} must go on from seq {expected}", key.stage));
            e.expected = Some(expected);
            e
        }
    }
}

pub async fn reports(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(batch): ApiJson<ReportBatch>,
) -> Result<Json<ReportsApplied>, ApiError> {
    needs_agent_right(&who)?;
    if let Some(r) = batch.reports.iter().find(|r| r.key.run != id) {
        return Err(ApiError::new(ErrorCode::BadRequest, format!("a report for run {:?} in a batch for run {id:?}", r.key.run)));
    }
    let registry = state.engine.registry();
    registry.heard_from(&who.sub);
    let sender = (!who.is_admin()).then_some(who.sub.as_ref());
    // held before applying: a `finished` report ends the stage and closes its slot
    let slots: Vec<_> = batch.reports.iter().filter_map(|r| registry.slot(&r.key)).collect();
    let applied = match registry.apply(sender, batch.reports).await {
        Ok(applied) => applied,
        Err((r, _)) => return Err(refusal(&state, r).await),
    };
    // answered once on disk, so a backend may forget what it was told is applied
    let mut through = 0;
    for (key, seq) in applied {
        let Some(slot) = slots.iter().find(|s| s.key == key) else { continue };
        let on_disk = slot.wait_durable(seq, DURABLE_WAIT).await;
        if on_disk < seq {
            let mut e = ApiError::new(
                ErrorCode::Internal,
                format!("reports of stage {:?} through seq {on_disk} are stored, the rest not yet: send them again (they are applied once)", key.stage),
            );
            e.expected = Some(on_disk + 1);
            return Err(e);
        }
        through = through.max(seq);
    }
    Ok(Json(ReportsApplied { applied_through: through, seen_at: crate::hub::now_ms() }))
}

/// How long a report request waits for what it reported to be on disk.
const DURABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Stores an artifact in the run's folder, its content type kept beside it. Only the
/// agent running a stage of that run may; the name is checked like a download's, and
/// the file may not land outside the folder (through a symlink, say).
pub async fn upload(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath((id, name)): ApiPath<(String, String)>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    needs_agent_right(&who)?;
    if let Some(why) = super::workflows::bad_name(req.uri().path(), &name) {
        return Err(ApiError::new(ErrorCode::BadRequest, why));
    }
    let content_type = match headers.get(axum::http::header::CONTENT_TYPE) {
        None => None,
        Some(v) => Some(v.to_str().ok().and_then(|t| t.parse::<mime::Mime>().ok()).ok_or_else(|| {
            ApiError::new(ErrorCode::BadRequest, format!("content-type: {v:?} is not a media type"))
        })?),
    };
    state.engine.artifacts_dir(&id).await?;
    if !who.is_admin() && !state.engine.registry().runs_part_of(&who.sub, &id) {
        return Err(ApiError::forbidden(format!("this agent runs no stage of run {id:?} now: it may not upload there")));
    }
    let max = state.agents.max_artifact_bytes as usize;
    let body = axum::body::to_bytes(req.into_body(), max).await.map_err(|_| {
        ApiError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("an artifact may be at most {max} bytes (SWITCHBOARD_MAX_ARTIFACT_BYTES)"),
        )
    })?;
    let dir = state.engine.artifacts_dir(&id).await?;
    let stored = store(&dir, &name, &body, content_type.as_ref()).await;
    stored.map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot store the artifact: {e}")))?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "name": name, "bytes": body.len() }))).into_response())
}

async fn store(dir: &std::path::Path, name: &str, body: &Bytes, content_type: Option<&mime::Mime>) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let path = dir.join(name);
    let parent = path.parent().unwrap_or(dir);
    tokio::fs::create_dir_all(parent).await?;
    let root = tokio::fs::canonicalize(dir).await?;
    if !tokio::fs::canonicalize(parent).await?.starts_with(&root) {
        return Err(Error::new(ErrorKind::PermissionDenied, "that path leads outside the run's artifact folder"));
    }
    if tokio::fs::symlink_metadata(&path).await.is_ok_and(|m| !m.is_file()) {
        return Err(Error::new(ErrorKind::AlreadyExists, "something that is not a file has that name"));
    }
    // written whole, then renamed: a reader never sees half a file
    let partial = parent.join(format!(".upload-{:016x}", rand::random::<u64>()));
    tokio::fs::write(&partial, body).await?;
    tokio::fs::rename(&partial, &path).await?;
    let types = super::workflows::content_type_file(dir, name);
    match content_type {
        Some(ct) => {
            if let Some(p) = types.parent() {
                tokio::fs::create_dir_all(p).await?;
            }
            tokio::fs::write(&types, ct.as_ref()).await
        }
        None => match tokio::fs::remove_file(&types).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}
