//! `POST /api/v1/tokens`: a holder of the `admin` right (an app's backend, the signed-in
//! operator) mints a token for one of its users: `user:{id}` and `session:{id}`, say,
//! for an hour. Never wider than its own: every topic glob must lie inside one of the
//! caller's, every right must be one it holds, and it expires no later than the caller.

use super::error::{ApiError, ApiJson};
use crate::auth::{Claims, Principal, Rights, ACCESS_TYP};
use crate::AppState;
use app::protocol::ErrorCode;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

/// The default lifetime, and the longest.
const DEFAULT_TTL_S: u64 = 3_600;
const MAX_TTL_S: u64 = 30 * 24 * 3_600;
const MAX_PATTERN: usize = 128;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    sub: String,
    #[serde(default)]
    sub_topics: Vec<String>,
    #[serde(default)]
    pub_topics: Vec<String>,
    /// Names: `control`, `run`, `exec`, `agent`, `admin`.
    #[serde(default)]
    rights: Vec<String>,
    #[serde(default)]
    ttl_s: Option<u64>,
}

fn bad(message: String) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, message)
}

fn rights_of(names: &[String]) -> Result<Rights, ApiError> {
    let mut r = Rights::NONE;
    for name in names {
        match name.as_str() {
            "control" => r.control = true,
            "run" => r.run = true,
            "exec" => r.exec = true,
            "agent" => r.agent = true,
            "admin" => r.admin = true,
            other => return Err(bad(format!("rights: {other:?} is not a right (control, run, exec, agent, admin)"))),
        }
    }
    Ok(r)
}

/// Whether every topic glob `inner` matches, `outer` matches too: `outer`'s `*` takes
/// any run of `inner`'s characters (wildcards included), its `?` one plain character,
/// and a plain character only itself.
pub fn glob_covers(outer: &str, inner: &str) -> bool {
    let (o, i): (Vec<char>, Vec<char>) = (outer.chars().collect(), inner.chars().collect());
    // reach[j]: outer[..k] can take inner[..j]
    let mut reach = vec![false; i.len() + 1];
    reach[0] = true;
    for &oc in &o {
        let mut next = vec![false; i.len() + 1];
        for j in 0..=i.len() {
            match oc {
                '*' => next[j] = reach[j] || (j > 0 && next[j - 1]),
                '?' => next[j] = j > 0 && reach[j - 1] && !matches!(i[j - 1], '*' | '?'),
                c => next[j] = j > 0 && reach[j - 1] && i[j - 1] == c,
            }
        }
        reach = next;
    }
    reach[i.len()]
}

fn check_topics(field: &str, wanted: &[String], own: &[String]) -> Result<(), ApiError> {
    for p in wanted {
        let valid = !p.is_empty() && p.len() <= MAX_PATTERN && p.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | ':' | '-' | '*' | '?'));
        if !valid {
            return Err(bad(format!("{field}: {p:?} is not a topic glob (1-{MAX_PATTERN} of a-z, 0-9, '_', '.', ':', '-', '*', '?')")));
        }
        if !own.iter().any(|o| glob_covers(o, p)) {
            return Err(ApiError::forbidden(format!("{field}: {p:?} is wider than this token's own {field} ({})", own.join(", "))));
        }
    }
    Ok(())
}

pub async fn mint(State(state): State<AppState>, Extension(who): Extension<Principal>, ApiJson(body): ApiJson<MintBody>) -> Result<Response, ApiError> {
    if !state.auth.is_on() {
        return Err(ApiError::new(ErrorCode::Conflict, "auth is off on this server: tokens are not checked, so none are minted"));
    }
    if !who.is_admin() {
        return Err(ApiError::forbidden("minting tokens needs the `admin` right"));
    }
    let Some(own) = who.claims.as_deref() else {
        return Err(ApiError::forbidden("this credential cannot mint tokens"));
    };
    if body.sub.is_empty() || body.sub.len() > MAX_PATTERN || body.sub.chars().any(char::is_control) {
        return Err(bad(format!("sub: {:?} must be 1-{MAX_PATTERN} bytes without control characters", body.sub)));
    }
    let rights = rights_of(&body.rights)?;
    if !who.rights.covers(&rights) {
        let missing: Vec<&str> = rights.names().into_iter().filter(|n| !who.rights.names().contains(n)).collect();
        return Err(ApiError::forbidden(format!("rights: this token does not hold {}", missing.join(", "))));
    }
    check_topics("sub_topics", &body.sub_topics, &own.sub_topics)?;
    check_topics("pub_topics", &body.pub_topics, &own.pub_topics)?;
    let ttl = body.ttl_s.unwrap_or(DEFAULT_TTL_S);
    if ttl == 0 || ttl > MAX_TTL_S {
        return Err(bad(format!("ttl_s: {ttl} must be 1 to {MAX_TTL_S} (30 days)")));
    }
    let now = (crate::hub::now_ms() / 1000).max(0) as u64;
    // no longer than the caller's own access
    let exp = (now + ttl).min(own.exp);
    let claims = Claims {
        sub: body.sub,
        exp,
        iat: Some(now),
        nbf: None,
        typ: Some(ACCESS_TYP.into()),
        sub_topics: body.sub_topics,
        pub_topics: body.pub_topics,
        rights,
    };
    let token = match state.auth.mint(&claims) {
        Some(Ok(t)) => t,
        Some(Err(e)) => return Err(ApiError::new(ErrorCode::Internal, e.to_string())),
        None => return Err(ApiError::new(ErrorCode::Conflict, "auth is off on this server")),
    };
    tracing::info!(by = %who.sub, sub = %claims.sub, exp, "token minted");
    let body = json!({
        "token": token,
        "sub": claims.sub,
        "expires_at": exp.saturating_mul(1000),
        "sub_topics": claims.sub_topics,
        "pub_topics": claims.pub_topics,
        "rights": claims.rights.names(),
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::glob_covers;

    #[test]
    fn a_glob_covers_only_what_it_matches_whatever_the_other_holds() {
        assert!(glob_covers("*", "session:*") && glob_covers("session:*", "session:abc") && glob_covers("session:*", "session:a*"));
        assert!(glob_covers("user:?", "user:a") && glob_covers("workflow:*", "workflow:*"));
        assert!(!glob_covers("session:*", "sess*"), "sess* matches sessions and more");
        assert!(!glob_covers("user:?", "user:*"), "? is one character, * any number");
        assert!(!glob_covers("user:?", "user:?a") && !glob_covers("session:abc", "session:*"));
        assert!(!glob_covers("a*b", "a*") && glob_covers("a*b", "a*xb") && !glob_covers("", "x"));
    }
}
