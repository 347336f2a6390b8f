//! The `Origin` check, against cross-site requests: a page on another site must not
//! open a socket with this browser's cookie, nor change anything (start a run, cancel
//! one) through a form or `fetch`. An origin is allowed when its host is one this
//! server answers to (`host::AllowedHosts`: the dashboard's own page) or when it is
//! listed in `--allowed-origins`. A request without `Origin` is not from a browser page.

use super::host::AllowedHosts;
use axum::http::{header, HeaderMap};

#[derive(Debug, Clone)]
pub struct Origins {
    /// `scheme://host[:port]`, lower-case.
    allowed: Vec<String>,
    hosts: AllowedHosts,
}

impl Origins {
    pub fn new(list: &[String], hosts: AllowedHosts) -> Origins {
        let allowed = list.iter().map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase()).filter(|o| !o.is_empty()).collect();
        Origins { allowed, hosts }
    }

    pub fn hosts(&self) -> &AllowedHosts {
        &self.hosts
    }

    /// Whether one `Origin` value is allowed.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.listed(origin) {
            return true;
        }
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
        authority.is_some_and(|a| self.hosts.allows(a))
    }

    /// Whether `origin` is one of `--allowed-origins` (or the list has `*`): the
    /// origins that get CORS headers.
    pub fn listed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.allowed.iter().any(|a| a == "*" || *a == origin)
    }

    /// Whether the request's `Origin`, if any, is allowed.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        match headers.get(header::ORIGIN) {
            None => true,
            Some(o) => o.to_str().is_ok_and(|o| self.allows_origin(o)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_listed_origins_pass_others_do_not() {
        let hosts = AllowedHosts::new("127.0.0.1".parse().unwrap(), 3000, None, &[]).unwrap();
        let o = Origins::new(&["https://app.example.com/".into()], hosts.clone());
        assert!(o.allows_origin("http://127.0.0.1:3000") && o.allows_origin("http://localhost:3000"));
        assert!(o.allows_origin("https://APP.example.com"));
        assert!(!o.allows_origin("http://evil.example"));
        assert!(!o.allows_origin("http://evil.example:3000"), "a rebound name on our port is not ours");
        assert!(!o.allows_origin("http://127.0.0.1:3001"), "another port is another origin");
        assert!(!o.allows_origin("null") && !o.allows_origin("file://") && !o.allows_origin("ws://127.0.0.1:3000"));
        assert!(o.allows(&HeaderMap::new()), "not a browser page");
        assert!(Origins::new(&["*".into()], hosts).allows_origin("http://anywhere"));
    }
}
