//! Who may do what (PROTOCOL.md section 7). Auth is on by default: every door asks for
//! an access token (a `Bearer` header, `?token=` on the WebSocket) or the dashboard's
//! session cookie, set the Jupyter way: the server prints a URL with a one-time login
//! code, and opening it signs the browser in. Turned off explicitly (loopback only),
//! every request is the open principal. Whatever the auth, `host` and `origin` keep
//! other sites' pages out (DNS rebinding, cross-site forms and sockets).

pub mod claims;
pub mod host;
pub mod keys;
pub mod origin;
pub mod secret;

pub use claims::{Claims, Principal, Rights, ACCESS_TYP, SESSION_TYP};
use axum::http::{header, HeaderMap};
use keys::{Keys, TokenError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "switchboard_session";
/// The subject of a session signed in with a login code.
pub const DASHBOARD_SUB: &str = "dashboard";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send an access token (Authorization: Bearer, or ?token= on the WebSocket) or sign in with the login link the server printed")]
    Missing,
    #[error("invalid access token: {0}")]
    Invalid(#[from] TokenError),
    #[error("this login link is not valid (already used, or mistyped): the server log shows a fresh one")]
    BadLoginCode,
}

/// How long tokens last.
#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    /// A signed-in browser's session cookie.
    pub session: Duration,
    /// The access tokens the dashboard gets from its session (it renews them).
    pub access: Duration,
}

struct Inner {
    keys: Keys,
    lifetimes: Lifetimes,
    /// The one login code that works now; replaced when used.
    login_code: Mutex<String>,
}

impl Inner {
    fn verify_kind(&self, token: &str, typ: &str) -> Result<Claims, TokenError> {
        let claims = self.keys.verify(token)?;
        let kind = claims.typ.as_deref().unwrap_or(ACCESS_TYP);
        if kind != typ {
            return Err(TokenError::WrongKind(format!("a {kind} token where a {typ} token is needed")));
        }
        Ok(claims)
    }
}

/// Auth, on or off. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Option<Arc<Inner>>,
}

fn now_s() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn new_code() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The value of one cookie in a `Cookie` header.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Auth {
    pub fn off() -> Auth {
        Auth { inner: None }
    }

    pub fn new(secret: &[u8], lifetimes: Lifetimes) -> Result<Auth, TokenError> {
        let keys = Keys::new(secret)?;
        Ok(Auth { inner: Some(Arc::new(Inner { keys, lifetimes, login_code: Mutex::new(new_code()) })) })
    }

    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Who sent these headers (and `?token=`, on the WebSocket): a `Bearer` token
    /// first, then the query token (both access tokens), then the session cookie (only
    /// a session token: a leaked access token cannot be planted as a cookie, nor a
    /// week-long session used as a bearer).
    pub fn principal(&self, headers: &HeaderMap, query_token: Option<&str>) -> Result<Principal, AuthError> {
        let Some(inner) = &self.inner else { return Ok(Principal::open()) };
        if let Some(token) = bearer(headers).or(query_token) {
            return Ok(Principal::from_claims(inner.verify_kind(token, ACCESS_TYP)?));
        }
        let token = cookie(headers, SESSION_COOKIE).ok_or(AuthError::Missing)?;
        Ok(Principal::from_claims(inner.verify_kind(token, SESSION_TYP)?))
    }

    /// Checks a token as the server would, without headers (an access token).
    pub fn verify_access(&self, token: &str) -> Result<Principal, AuthError> {
        let Some(inner) = &self.inner else { return Ok(Principal::open()) };
        Ok(Principal::from_claims(inner.verify_kind(token, ACCESS_TYP)?))
    }

    pub fn mint(&self, claims: &Claims) -> Option<Result<String, TokenError>> {
        self.inner.as_ref().map(|i| i.keys.mint(claims))
    }

    /// The path that signs a browser in now (None with auth off).
    pub fn login_path(&self) -> Option<String> {
        let inner = self.inner.as_ref()?;
        let code = inner.login_code.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Some(format!("/login?code={code}"))
    }

    /// Spends the login code: the session cookie's token and lifetime. A fresh code
    /// replaces it (logged by the caller), so a leaked link works at most once.
    pub fn login(&self, code: &str) -> Result<(String, Duration), AuthError> {
        let inner = self.inner.as_ref().ok_or(AuthError::BadLoginCode)?;
        {
            let mut current = inner.login_code.lock().unwrap_or_else(|p| p.into_inner());
            // compared in constant time: the code is a password
            let matches = current.len() == code.len()
                && current.bytes().zip(code.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
            if !matches {
                return Err(AuthError::BadLoginCode);
            }
            *current = new_code();
        }
        let ttl = inner.lifetimes.session;
        // the person at the printed link is the operator: every right but an agent's
        let claims = Claims {
            sub: DASHBOARD_SUB.into(),
            exp: now_s() + ttl.as_secs(),
            iat: Some(now_s()),
            nbf: None,
            typ: Some(SESSION_TYP.into()),
            sub_topics: vec!["*".into()],
            pub_topics: vec!["*".into()],
            rights: Rights::OPERATOR,
        };
        let token = inner.keys.mint(&claims)?;
        Ok((token, ttl))
    }

    /// A short-lived access token with the principal's own rights (the dashboard's
    /// WebSocket uses one, and asks again when it expires). None with auth off.
    pub fn access_token_for(&self, p: &Principal) -> Option<Result<(String, u64), TokenError>> {
        let inner = self.inner.as_ref()?;
        let claims = p.claims.as_ref()?;
        let exp = claims.exp.min(now_s() + inner.lifetimes.access.as_secs());
        let access = Claims { exp, iat: Some(now_s()), typ: Some(ACCESS_TYP.into()), ..(**claims).clone() };
        Some(inner.keys.mint(&access).map(|t| (t, exp)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth() -> Auth {
        Auth::new(&[1u8; 32], Lifetimes { session: Duration::from_secs(3600), access: Duration::from_secs(60) }).unwrap()
    }

    #[test]
    fn a_login_code_works_once_and_yields_a_session() {
        let a = auth();
        let path = a.login_path().unwrap();
        let code = path.strip_prefix("/login?code=").unwrap().to_owned();
        assert_eq!(a.login("wrong"), Err(AuthError::BadLoginCode));
        let (token, ttl) = a.login(&code).unwrap();
        assert_eq!(ttl, Duration::from_secs(3600));
        assert_eq!(a.login(&code), Err(AuthError::BadLoginCode), "one time only");
        assert_ne!(a.login_path().unwrap(), path, "a fresh code replaces it");
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("theme=dark; {SESSION_COOKIE}={token}")).unwrap());
        let p = a.principal(&headers, None).unwrap();
        assert!(p.may_control() && p.may_run() && p.may_exec() && p.is_admin() && p.may_subscribe("workflow:1"));
        let (access, exp) = a.access_token_for(&p).unwrap().unwrap();
        assert!(exp <= now_s() + 60);
        assert_eq!(a.principal(&HeaderMap::new(), Some(&access)).unwrap().sub.as_ref(), DASHBOARD_SUB);
        // each kind only where it belongs
        assert!(matches!(a.principal(&HeaderMap::new(), Some(&token)), Err(AuthError::Invalid(TokenError::WrongKind(_)))));
        let mut planted = HeaderMap::new();
        planted.insert(header::COOKIE, HeaderValue::from_str(&format!("{SESSION_COOKIE}={access}")).unwrap());
        assert!(matches!(a.principal(&planted, None), Err(AuthError::Invalid(TokenError::WrongKind(_)))));
    }

    #[test]
    fn without_a_token_the_answer_is_missing_and_auth_off_is_open() {
        let a = auth();
        assert_eq!(a.principal(&HeaderMap::new(), None).unwrap_err(), AuthError::Missing);
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert!(matches!(a.principal(&h, None), Err(AuthError::Invalid(_))));
        assert!(Auth::off().principal(&HeaderMap::new(), None).unwrap().may_control());
        assert!(Auth::off().login_path().is_none());
    }
}
