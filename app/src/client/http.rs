//! The page's HTTP calls (gloo-net in the browser): JSON in and out, errors as the
//! API's own message, and the access the WebSocket needs. Same-origin requests carry
//! the session cookie when auth is on. On the server these answer "not in a browser".

use crate::protocol::SessionInfo;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub const SESSION_PATH: &str = "/api/v1/session";

/// Why the WebSocket cannot be opened now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The server says no (no session, or it ended): retrying would not help.
    Denied(String),
    /// The server did not answer: try again later.
    Unreachable,
}

/// A failed call: the HTTP status when the server answered, and what it said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HttpError {
    pub status: Option<u16>,
    pub message: String,
}

impl HttpError {
    fn new(status: Option<u16>, message: impl Into<String>) -> Self {
        HttpError { status, message: message.into() }
    }
}

#[cfg(feature = "hydrate")]
async fn read<T: DeserializeOwned>(resp: Result<gloo_net::http::Response, gloo_net::Error>) -> Result<T, HttpError> {
    let resp = resp.map_err(|e| HttpError::new(None, format!("the server did not answer: {e}")))?;
    let status = resp.status();
    if resp.ok() {
        return resp.json::<T>().await.map_err(|e| HttpError::new(Some(status), format!("unexpected answer: {e}")));
    }
    match resp.json::<crate::protocol::ApiErrorBody>().await {
        Ok(body) => Err(HttpError::new(Some(status), body.error.message)),
        Err(_) => Err(HttpError::new(Some(status), format!("the server answered {status}"))),
    }
}

/// `GET path` as JSON.
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, HttpError> {
    #[cfg(feature = "hydrate")]
    return read(gloo_net::http::Request::get(path).send().await).await;
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = path;
        Err(HttpError::new(None, "not in a browser"))
    }
}

/// `POST path` with a JSON body; the answer as JSON.
pub async fn post_json<T: DeserializeOwned>(path: &str, body: &impl Serialize) -> Result<T, HttpError> {
    #[cfg(feature = "hydrate")]
    {
        let req = gloo_net::http::Request::post(path).json(body).map_err(|e| HttpError::new(None, e.to_string()))?;
        read(req.send().await).await
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (path, serde_json::to_value(body));
        Err(HttpError::new(None, "not in a browser"))
    }
}

/// How this page may connect: the session, or why not.
pub async fn session() -> Result<SessionInfo, Access> {
    #[cfg(feature = "hydrate")]
    {
        let resp = gloo_net::http::Request::get(SESSION_PATH).send().await.map_err(|_| Access::Unreachable)?;
        match resp.status() {
            200 => resp.json::<SessionInfo>().await.map_err(|_| Access::Unreachable),
            401 | 403 => {
                let why = resp.json::<crate::protocol::ApiErrorBody>().await.map(|b| b.error.message);
                Err(Access::Denied(why.unwrap_or_else(|_| "not signed in".into())))
            }
            _ => Err(Access::Unreachable),
        }
    }
    #[cfg(not(feature = "hydrate"))]
    Err(Access::Unreachable)
}

/// The WebSocket's URL, with a fresh access token when auth is on.
pub async fn ws_url() -> Result<String, Access> {
    #[cfg(feature = "hydrate")]
    {
        let session = session().await?;
        let location = web_sys::window().ok_or(Access::Unreachable)?.location();
        let scheme = if location.protocol().ok().as_deref() == Some("https:") { "wss" } else { "ws" };
        let host = location.host().map_err(|_| Access::Unreachable)?;
        let mut url = format!("{scheme}://{host}/ws");
        if let Some(token) = session.token {
            url.push_str("?token=");
            url.push_str(&String::from(js_sys::encode_uri_component(&token)));
        }
        Ok(url)
    }
    #[cfg(not(feature = "hydrate"))]
    Err(Access::Unreachable)
}

/// After a close 1008: whether access can be had again (the session still holds).
pub async fn renew_access() -> bool {
    session().await.is_ok()
}
