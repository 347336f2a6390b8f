//! The one place where failures become HTTP responses: `{"error": {"code", "message"}}`
//! with a matching status, and JSON/query extractors whose rejections use that format.

use crate::hub::HubError;
use app::protocol::ErrorCode;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to send as `Retry-After` (with 429 and 503).
    pub retry_after_s: Option<u32>,
    /// The report seq a refused gap is to go on from (`error.expected`).
    pub expected: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = match code {
            ErrorCode::BadJson | ErrorCode::BadRequest | ErrorCode::UnknownType => StatusCode::BAD_REQUEST,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::TooManySubscriptions => StatusCode::BAD_REQUEST,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::AgentOffline => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError { status, code: code.as_str(), message: message.into(), retry_after_s: None, expected: None }
    }

    /// An error whose status the protocol's codes do not name (401, 413, 415, 421).
    pub fn with_status(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after_s: None, expected: None }
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// 401: no credentials, or bad ones (the protocol has no code of its own for it).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::with_status(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Forbidden, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let mut body = serde_json::json!({ "error": { "code": self.code, "message": self.message } });
        if let Some(expected) = self.expected {
            body["error"]["expected"] = expected.into();
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after_s {
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
        }
        resp
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let unavailable = matches!(e, HubError::Log(crate::hub::log::LogError::Unavailable(_)));
        let mut error = ApiError::new(e.code(), e.to_string());
        if unavailable {
            // the broker is away: the same request may succeed in a moment
            error.status = StatusCode::SERVICE_UNAVAILABLE;
            error.retry_after_s = Some(1);
        }
        error
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return super::limits::too_large(format!("{}: the request body is over this endpoint's limit", r.body_text()));
        }
        let code = match r {
            JsonRejection::JsonSyntaxError(_) => ErrorCode::BadJson,
            _ => ErrorCode::BadRequest,
        };
        ApiError::new(code, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::new(ErrorCode::BadRequest, r.body_text())
    }
}

/// `axum::Json` with the API's error format.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` with the API's error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` with the API's error format.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

pub async fn not_found_fallback() -> ApiError {
    ApiError::not_found("no such API endpoint")
}
