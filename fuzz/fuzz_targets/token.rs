//! Credentials, with auth on and a fixed secret (server/src/auth/mod.rs `Auth`, keys.rs
//! `Keys::verify`, claims.rs `Principal::from_claims`). The first byte picks what the
//! rest is: an arbitrary string as a token (Bearer, `?token=`); an arbitrary
//! `Authorization` or `Cookie` header; or arbitrary JSON as the claims of a correctly
//! signed token, which gets past the signature to the claims' parsing and validation,
//! and to what a principal made of them does.
#![no_main]

use http::{header, HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use server::auth::{Auth, Lifetimes, Principal, SESSION_COOKIE};
use std::sync::LazyLock;
use std::time::Duration;

const SECRET: &[u8; 32] = b"switchboard fuzz signing secret!";

static AUTH: LazyLock<Auth> = LazyLock::new(|| {
    let lifetimes = Lifetimes { session: Duration::from_secs(3600), access: Duration::from_secs(60) };
    Auth::new(SECRET, lifetimes).expect("a 32-byte secret is accepted")
});
static SIGNER: LazyLock<EncodingKey> = LazyLock::new(|| EncodingKey::from_secret(SECRET).expect("a 32-byte secret is accepted"));

fn with_header(name: header::HeaderName, value: HeaderValue) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    headers
}

/// What the server asks of a principal.
fn use_principal(p: &Principal) {
    let _ = (p.may_subscribe("workflow:42"), p.may_publish("session:abc"), p.may_publish("workflow:42"));
    let _ = (p.sees_every_run(), p.rights.names(), p.is_admin());
    let _ = AUTH.access_token_for(p);
}

fuzz_target!(|data: &[u8]| {
    let auth = &*AUTH;
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 3 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else { return };
            if let Ok(p) = auth.verify_access(token) {
                use_principal(&p);
            }
            let _ = auth.principal(&HeaderMap::new(), Some(token));
        }
        1 => {
            let Ok(value) = HeaderValue::from_bytes(rest) else { return };
            let _ = auth.principal(&with_header(header::AUTHORIZATION, value.clone()), None);
            let _ = auth.principal(&with_header(header::COOKIE, value), None);
        }
        _ => {
            let Ok(text) = std::str::from_utf8(rest) else { return };
            // the payload is exactly this JSON (a RawValue serializes as it is)
            let Ok(claims) = serde_json::value::RawValue::from_string(text.to_owned()) else { return };
            let Ok(token) = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &SIGNER) else { return };
            if let Ok(p) = auth.verify_access(&token) {
                use_principal(&p);
            }
            if let Ok(cookie) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}")) {
                if let Ok(p) = auth.principal(&with_header(header::COOKIE, cookie), None) {
                    use_principal(&p);
                }
            }
        }
    }
});
