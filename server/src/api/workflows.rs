//! The job engine's HTTP API: start runs, read snapshots, act on runs, and serve their
//! artifacts without ever reading outside a run's artifact folder.

use super::error::{ApiError, ApiJson, ApiPath};
use crate::auth::Principal;
use crate::engine::EngineError;
use crate::AppState;
use app::protocol::{ControlAction, ErrorCode, WorkflowSnapshot, AGENTS_TOPIC};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;

/// How long a client refused for a full queue is asked to wait.
const QUEUE_FULL_RETRY_S: u32 = 5;
/// How long a control refused for an offline executor is asked to wait.
const AGENT_OFFLINE_RETRY_S: u32 = 2;
/// How long a client refused while the database takes no writes is asked to wait.
const UNWRITABLE_RETRY_S: u32 = 5;

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let retry = match e {
            EngineError::QueueFull(_) => Some(QUEUE_FULL_RETRY_S),
            EngineError::AgentOffline(_) | EngineError::NodeUnreachable(_) => Some(AGENT_OFFLINE_RETRY_S),
            EngineError::Unwritable(_) => Some(UNWRITABLE_RETRY_S),
            _ => None,
        };
        let mut err = ApiError::new(e.code(), e.to_string());
        if matches!(e, EngineError::Unwritable(_)) {
            // `internal` (retryable), as 503: this node is up but cannot take new work
            err.status = StatusCode::SERVICE_UNAVAILABLE;
        }
        match retry {
            Some(s) => err.retry_after(s),
            None => err,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// A pipeline's name, or an inline definition.
    pipeline: Value,
    /// The run's id, when the caller chooses it (`demo-project`).
    #[serde(default)]
    id: Option<String>,
}

/// A run's topic, which a principal must be allowed to read to see or touch the run.
fn topic(id: &str) -> String {
    format!("{}{id}", crate::hub::DURABLE_PREFIX)
}

/// May `who` see run `id`? (403 otherwise; a missing run is 404 later.)
fn may_see(who: &Principal, id: &str) -> Result<(), ApiError> {
    if who.may_subscribe(&topic(id)) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("this token may not see workflow {id:?} (see its sub_topics)")))
    }
}

/// May `who` act on run `id`: the `control` right, and may see it.
fn may_act(who: &Principal, id: &str) -> Result<(), ApiError> {
    if !who.may_control() {
        return Err(ApiError::forbidden("this token may not act on workflows (it lacks the `control` right)"));
    }
    may_see(who, id)
}

pub async fn start(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let external = body.pipeline.get("executor").is_some_and(|e| !e.is_null());
    if body.pipeline.is_string() || external {
        // an external run carries no command: starting one is like starting a named pipeline
        if !who.may_run() {
            return Err(ApiError::forbidden("this token may not start pipelines (it lacks the `run` right)"));
        }
    } else {
        if !state.engine.inline_allowed() {
            return Err(ApiError::forbidden(crate::engine::INLINE_OFF));
        }
        if !who.may_exec() {
            return Err(ApiError::forbidden(
                "an inline pipeline runs any shell command: this token lacks the `exec` right (`run` starts only named pipelines)",
            ));
        }
    }
    let pipeline = state.engine.pipeline_of(body.pipeline)?;
    let snapshot = state.engine.submit(pipeline, body.id).await?;
    Ok((StatusCode::CREATED, Json(snapshot)).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WorkflowSnapshot>, ApiError> {
    may_see(&who, &id)?;
    Ok(Json(state.engine.snapshot(&id).await?))
}

/// `POST /workflows/{id}/{pause|resume|cancel|confirm}`
pub async fn act(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath((id, action)): ApiPath<(String, String)>,
) -> Result<Json<WorkflowSnapshot>, ApiError> {
    may_act(&who, &id)?;
    let engine = &state.engine;
    match action.as_str() {
        "pause" => engine.control(&id, ControlAction::Pause).await?,
        "resume" => engine.control(&id, ControlAction::Resume).await?,
        "cancel" => engine.control(&id, ControlAction::Cancel).await?,
        "confirm" => engine.confirm(&id).await?,
        other => {
            return Err(ApiError::not_found(format!("no action {other:?}: use pause, resume, cancel or confirm")))
        }
    }
    Ok(Json(engine.snapshot(&id).await?))
}

pub async fn restart(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath((id, stage)): ApiPath<(String, String)>,
) -> Result<Json<WorkflowSnapshot>, ApiError> {
    may_act(&who, &id)?;
    state.engine.restart_stage(&id, &stage).await?;
    Ok(Json(state.engine.snapshot(&id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    text: String,
    #[serde(default)]
    from: Option<String>,
}

pub async fn chat(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ChatBody>,
) -> Result<Json<Value>, ApiError> {
    may_act(&who, &id)?;
    if body.text.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::BadRequest, "text: must not be empty"));
    }
    // with auth on, a message is from its token's subject, whatever it claims
    let from = if state.auth.is_on() { who.sub.to_string() } else { body.from.unwrap_or_else(|| "api".into()) };
    state.engine.chat(&id, &from, &body.text).await?;
    Ok(Json(json!({ "ok": true })))
}

/// The pipelines a run may be started from, `env` values redacted (they may hold
/// credentials; the stage gets them, a reader of this list does not).
pub async fn pipelines(State(state): State<AppState>) -> Json<Value> {
    let shown: Vec<_> = state.engine.pipelines().iter().map(|p| p.redacted()).collect();
    Json(json!({ "pipelines": shown }))
}

/// Every agent at `seq` of `agents`, and the coordinator's figures now; an agent's
/// current task is shown only to a token that may see that run.
pub async fn agents(State(state): State<AppState>, Extension(who): Extension<Principal>) -> Result<Json<Value>, ApiError> {
    let (seq, epoch) = state.hub.position(AGENTS_TOPIC).await?;
    let coordinator = state.engine.coordinator_metrics();
    let agents: Vec<_> = state.engine.agents_everywhere().await.into_iter().map(|a| crate::agents::as_seen_by(a, &who)).collect();
    Ok(Json(json!({ "agents": agents, "seq": seq, "epoch": epoch, "coordinator": coordinator })))
}

/// Why an artifact name is refused before the file system is even asked.
pub fn bad_name(raw_path: &str, name: &str) -> Option<&'static str> {
    let lower = raw_path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains("%00") {
        return Some("encoded slashes are not allowed in artifact names");
    }
    if name.starts_with('/') || name.contains('\\') || name.contains('\0') {
        return Some("artifact names are relative paths");
    }
    if name.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Some("artifact names may not contain empty, '.' or '..' components");
    }
    None
}

/// Where the content type an uploader gave an artifact is kept: beside the artifact
/// folder, not in it, so it is never an artifact itself.
pub fn content_type_file(artifacts_dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    artifacts_dir.with_file_name("artifact-types").join(name)
}

/// `GET /workflows/{id}/artifacts/{*name}`: the file, with its content type.
pub async fn artifact(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    ApiPath((id, name)): ApiPath<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    may_see(&who, &id)?;
    if let Some(why) = bad_name(req.uri().path(), &name) {
        return Err(ApiError::new(ErrorCode::BadRequest, why));
    }
    let root = state.engine.artifacts_dir(&id).await?;
    let root = root.canonicalize().map_err(|_| ApiError::not_found(format!("workflow {id:?} has no artifacts")))?;
    let path = root
        .join(&name)
        .canonicalize()
        .map_err(|_| ApiError::not_found(format!("no artifact {name:?} in workflow {id:?}")))?;
    // canonical paths: a symlink that leads out of the folder ends up here
    if !path.starts_with(&root) {
        return Err(ApiError::new(ErrorCode::Forbidden, "that path leads outside the run's artifact folder"));
    }
    if !path.is_file() {
        return Err(ApiError::not_found(format!("no artifact {name:?} in workflow {id:?}")));
    }
    let uploaded_type = std::fs::read_to_string(content_type_file(&root, &name)).ok();
    let file = match uploaded_type.as_deref().and_then(|t| t.trim().parse::<mime::Mime>().ok()) {
        Some(mime) => tower_http::services::ServeFile::new_with_mime(path, &mime),
        None => tower_http::services::ServeFile::new(path),
    };
    let served = file
        .oneshot(req)
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("cannot read the artifact: {e}")))?;
    let mut resp = served.into_response();
    make_inert(resp.headers_mut(), &name);
    Ok(resp)
}

/// Image types a browser renders and never runs: the gallery shows them inline.
const INLINE_TYPES: [&str; 5] = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"];

/// An artifact is whatever a stage wrote: HTML, SVG or script must never run in this
/// server's origin. Everything but plain images is a download, every response is
/// sandboxed (no script, no same-origin access), and `nosniff` is set on all.
fn make_inert(headers: &mut axum::http::HeaderMap, name: &str) {
    use axum::http::{header, HeaderValue};
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !INLINE_TYPES.contains(&essence.as_str()) {
        let file = name.rsplit('/').next().unwrap_or(name).replace(['"', '\\', '\r', '\n'], "_");
        let disposition = format!("attachment; filename=\"{file}\"");
        let value = HeaderValue::from_str(&disposition).unwrap_or(HeaderValue::from_static("attachment"));
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; img-src 'self'; sandbox"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

#[cfg(test)]
mod tests {
    use super::bad_name;

    #[test]
    fn names_that_try_to_leave_are_refused() {
        assert_eq!(bad_name("/a/frame-1.png", "frame-1.png"), None);
        assert_eq!(bad_name("/a/sub/x.txt", "sub/x.txt"), None);
        for (raw, name) in [
            ("/a/..%2fsecret", "../secret"),
            ("/a/x%2F..", "x/.."),
            ("/a/../x", "../x"),
            ("/a//etc/passwd", "/etc/passwd"),
            ("/a/x/./y", "x/./y"),
            ("/a/x\\..\\y", "x\\..\\y"),
        ] {
            assert!(bad_name(raw, name).is_some(), "{raw} {name}");
        }
    }
}
