//! What a token says (PROTOCOL.md section 7) and what its holder may do: subscribe to
//! the topics its `sub_topics` globs match, publish to those of `pub_topics`, and act
//! on runs when `control` is true.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wildmatch::WildMatch;

/// The claims of an access token (JWT, HS256).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default)]
    pub sub_topics: Vec<String>,
    #[serde(default)]
    pub pub_topics: Vec<String>,
    #[serde(default)]
    pub control: bool,
}

/// Who is asking, and what they may do. Cheap to clone (one per connection).
#[derive(Debug, Clone)]
pub struct Principal {
    pub sub: Arc<str>,
    sub_topics: Arc<[WildMatch]>,
    pub_topics: Arc<[WildMatch]>,
    pub control: bool,
    /// When the access ends (ms since the epoch); None: never (auth off).
    pub expires_at_ms: Option<i64>,
    /// The claims it came from (None with auth off).
    pub claims: Option<Arc<Claims>>,
}

fn globs(patterns: &[String]) -> Arc<[WildMatch]> {
    patterns.iter().map(|p| WildMatch::new(p)).collect()
}

impl Principal {
    /// Auth off: the server is on loopback and every door is open.
    pub fn open() -> Principal {
        Principal {
            sub: Arc::from("local"),
            sub_topics: globs(&["*".into()]),
            pub_topics: globs(&["*".into()]),
            control: true,
            expires_at_ms: None,
            claims: None,
        }
    }

    pub fn from_claims(c: Claims) -> Principal {
        Principal {
            sub: Arc::from(c.sub.as_str()),
            sub_topics: globs(&c.sub_topics),
            pub_topics: globs(&c.pub_topics),
            control: c.control,
            expires_at_ms: Some((c.exp as i64).saturating_mul(1000)),
            claims: Some(Arc::new(c)),
        }
    }

    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.sub_topics.iter().any(|g| g.matches(topic))
    }

    pub fn may_publish(&self, topic: &str) -> bool {
        self.pub_topics.iter().any(|g| g.matches(topic))
    }

    pub fn may_control(&self) -> bool {
        self.control
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub_topics: &[&str], pub_topics: &[&str], control: bool) -> Claims {
        Claims {
            sub: "alice".into(),
            exp: 2_000_000_000,
            iat: None,
            sub_topics: sub_topics.iter().map(|s| s.to_string()).collect(),
            pub_topics: pub_topics.iter().map(|s| s.to_string()).collect(),
            control,
        }
    }

    #[test]
    fn globs_decide_topics() {
        let p = Principal::from_claims(claims(&["workflow:*", "metrics"], &["session:abc"], false));
        assert!(p.may_subscribe("workflow:42") && p.may_subscribe("metrics"));
        assert!(!p.may_subscribe("metrics2") && !p.may_subscribe("agents") && !p.may_subscribe("workflow"));
        assert!(p.may_publish("session:abc") && !p.may_publish("session:abd"));
        assert!(!p.may_control());
        assert_eq!(p.expires_at_ms, Some(2_000_000_000_000));
    }

    #[test]
    fn no_patterns_means_nothing() {
        let p = Principal::from_claims(claims(&[], &[], true));
        assert!(!p.may_subscribe("metrics") && !p.may_publish("x"));
        let open = Principal::open();
        assert!(open.may_subscribe("anything:at-all") && open.may_publish("x") && open.may_control());
    }

    #[test]
    fn question_marks_match_one_character() {
        let p = Principal::from_claims(claims(&["agent:?"], &[], false));
        assert!(p.may_subscribe("agent:a") && !p.may_subscribe("agent:ab"));
    }
}
