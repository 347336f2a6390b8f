//! What a token says (PROTOCOL.md section 7) and what its holder may do: subscribe to
//! the topics its `sub_topics` globs match, publish to those of `pub_topics` (never to
//! a server-owned topic), and the rights: `control` (act on runs it may see), `run`
//! (start a named pipeline), `exec` (start an inline one: any shell command), `agent`
//! (register as an agent) and `admin` (see every client, mint narrower tokens).

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
    /// Not valid before, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// `access` (a Bearer or `?token=` token) or `session` (the dashboard's cookie);
    /// each is accepted only where it belongs. None reads as `access`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default)]
    pub sub_topics: Vec<String>,
    #[serde(default)]
    pub pub_topics: Vec<String>,
    #[serde(flatten)]
    pub rights: Rights,
}

/// The `typ` of access tokens.
pub const ACCESS_TYP: &str = "access";
/// The `typ` of the dashboard's session cookie.
pub const SESSION_TYP: &str = "session";

/// What a token may do besides reading and publishing its topics. Each is its own
/// right: acting on a run does not let a token start one, starting a named pipeline
/// does not let it run an arbitrary command.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    /// Pause, resume, cancel, confirm, restart a stage and chat, on runs it may see.
    #[serde(default, skip_serializing_if = "is_false")]
    pub control: bool,
    /// Start a pipeline from the server's pipelines folder, by name.
    #[serde(default, skip_serializing_if = "is_false")]
    pub run: bool,
    /// Start an inline pipeline: any shell command (when the server allows them).
    #[serde(default, skip_serializing_if = "is_false")]
    pub exec: bool,
    /// Register as an agent and report for the work it was given.
    #[serde(default, skip_serializing_if = "is_false")]
    pub agent: bool,
    /// See every client in stats, mint narrower tokens.
    #[serde(default, skip_serializing_if = "is_false")]
    pub admin: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Rights {
    /// An operator's: everything but acting as an agent.
    pub const OPERATOR: Rights = Rights { control: true, run: true, exec: true, agent: false, admin: true };
    pub const ALL: Rights = Rights { control: true, run: true, exec: true, agent: true, admin: true };
    pub const NONE: Rights = Rights { control: false, run: false, exec: false, agent: false, admin: false };

    /// Whether every right of `other` is also one of these.
    pub fn covers(&self, other: &Rights) -> bool {
        (self.control || !other.control)
            && (self.run || !other.run)
            && (self.exec || !other.exec)
            && (self.agent || !other.agent)
            && (self.admin || !other.admin)
    }

    /// The names of the rights held, for messages and the dashboard.
    pub fn names(&self) -> Vec<&'static str> {
        [(self.control, "control"), (self.run, "run"), (self.exec, "exec"), (self.agent, "agent"), (self.admin, "admin")]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect()
    }
}

/// Who is asking, and what they may do. Cheap to clone (one per connection).
#[derive(Debug, Clone)]
pub struct Principal {
    pub sub: Arc<str>,
    sub_topics: Arc<[WildMatch]>,
    pub_topics: Arc<[WildMatch]>,
    pub rights: Rights,
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
        // one for the process: every connection with auth off shares it
        static OPEN: std::sync::OnceLock<Principal> = std::sync::OnceLock::new();
        OPEN.get_or_init(|| Principal {
            sub: Arc::from("local"),
            sub_topics: globs(&["*".into()]),
            pub_topics: globs(&["*".into()]),
            rights: Rights::ALL,
            expires_at_ms: None,
            claims: None,
        })
        .clone()
    }

    pub fn from_claims(c: Claims) -> Principal {
        Principal {
            sub: Arc::from(c.sub.as_str()),
            sub_topics: globs(&c.sub_topics),
            pub_topics: globs(&c.pub_topics),
            rights: c.rights,
            expires_at_ms: Some((c.exp as i64).saturating_mul(1000)),
            claims: Some(Arc::new(c)),
        }
    }

    pub fn may_subscribe(&self, topic: &str) -> bool {
        self.sub_topics.iter().any(|g| g.matches(topic))
    }

    /// Server-owned topics are never the token's to write, whatever `pub_topics` says.
    pub fn may_publish(&self, topic: &str) -> bool {
        !app::protocol::is_server_owned(topic) && self.pub_topics.iter().any(|g| g.matches(topic))
    }

    pub fn may_control(&self) -> bool {
        self.rights.control
    }

    pub fn may_run(&self) -> bool {
        self.rights.run
    }

    pub fn may_exec(&self) -> bool {
        self.rights.exec
    }

    pub fn is_admin(&self) -> bool {
        self.rights.admin
    }

    /// Whether it may see every run (the aggregate topics mention them all).
    pub fn sees_every_run(&self) -> bool {
        self.sub_topics.iter().any(|g| g.matches("workflow:*") && g.matches("workflow:any-id-at-all"))
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
            nbf: None,
            typ: None,
            sub_topics: sub_topics.iter().map(|s| s.to_string()).collect(),
            pub_topics: pub_topics.iter().map(|s| s.to_string()).collect(),
            rights: Rights { control, ..Rights::NONE },
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
    fn server_owned_topics_are_never_publishable() {
        let p = Principal::from_claims(claims(&["*"], &["*"], true));
        for t in ["workflow:1", "coordinator", "agents", "agent:gpu-1", "metrics"] {
            assert!(!p.may_publish(t), "{t}");
            assert!(!Principal::open().may_publish(t), "{t} with auth off");
        }
        assert!(p.may_publish("session:1") && p.may_publish("metrics2") && p.may_publish("workflows"));
    }

    #[test]
    fn rights_are_separate_and_serialize_flat() {
        let mut c = claims(&["workflow:*"], &[], true);
        let p = Principal::from_claims(c.clone());
        assert!(p.may_control() && !p.may_run() && !p.may_exec() && !p.is_admin());
        assert!(p.sees_every_run());
        assert!(!Principal::from_claims(claims(&["workflow:abc*"], &[], false)).sees_every_run());
        c.rights.exec = true;
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!((json["control"].clone(), json["exec"].clone()), (serde_json::json!(true), serde_json::json!(true)));
        assert!(json.get("admin").is_none(), "false rights are left out: {json}");
        assert!(Rights::OPERATOR.covers(&Rights { control: true, exec: true, ..Rights::NONE }));
        assert!(!Rights { control: true, ..Rights::NONE }.covers(&Rights { exec: true, ..Rights::NONE }));
    }

    #[test]
    fn question_marks_match_one_character() {
        let p = Principal::from_claims(claims(&["agent:?"], &[], false));
        assert!(p.may_subscribe("agent:a") && !p.may_subscribe("agent:ab"));
    }
}
