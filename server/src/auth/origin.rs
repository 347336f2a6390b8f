//! The WebSocket's `Origin` check, against cross-site WebSocket hijacking: a page on
//! another site must not open a socket with this browser's cookie (or to a server on
//! loopback). The dashboard's own origin is always allowed; others only when listed. A
//! request without `Origin` is not from a browser page, and not this check's business.

use axum::http::{header, HeaderMap};

#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// `scheme://host[:port]`, lower-case.
    allowed: Vec<String>,
}

impl Origins {
    pub fn new(list: &[String]) -> Origins {
        Origins { allowed: list.iter().map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase()).filter(|o| !o.is_empty()).collect() }
    }

    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else { return true };
        let Ok(origin) = origin.to_str() else { return false };
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.allowed.iter().any(|a| a == "*" || *a == origin) {
            return true;
        }
        // the page's own origin: the same host (and port) as this request's
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_ascii_lowercase);
        let origin_host = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        matches!((origin_host, host), (Some(o), Some(h)) if o == h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_and_listed_origins_pass_others_do_not() {
        let o = Origins::new(&["https://app.example.com/".into()]);
        assert!(o.allows(&headers(Some("http://127.0.0.1:3000"), "127.0.0.1:3000")));
        assert!(o.allows(&headers(Some("https://APP.example.com"), "127.0.0.1:3000")));
        assert!(o.allows(&headers(None, "127.0.0.1:3000")), "not a browser page");
        assert!(!o.allows(&headers(Some("http://evil.example"), "127.0.0.1:3000")));
        assert!(!o.allows(&headers(Some("http://127.0.0.1:3001"), "127.0.0.1:3000")), "another port is another origin");
        assert!(!o.allows(&headers(Some("null"), "127.0.0.1:3000")));
        assert!(Origins::new(&["*".into()]).allows(&headers(Some("http://anywhere"), "x")));
    }
}
