//! Topic names: `[a-z0-9_.:-]{1,128}`, and the well-known ones.

use std::fmt;

pub const MAX_TOPIC_LEN: usize = 128;
pub const METRICS_TOPIC: &str = "metrics";
pub const COORDINATOR_TOPIC: &str = "coordinator";
pub const AGENTS_TOPIC: &str = "agents";

/// Whether only the server writes this topic (PROTOCOL.md section 7): runs, the
/// coordinator, agents and metrics. No `publish` may, whatever a token's `pub_topics`.
pub fn is_server_owned(name: &str) -> bool {
    matches!(name, METRICS_TOPIC | COORDINATOR_TOPIC | AGENTS_TOPIC)
        || name.starts_with("workflow:")
        || name.starts_with("agent:")
}

/// Why a string is not a topic name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic name is empty")]
    Empty,
    #[error("topic name is {0} bytes long; at most 128 are allowed")]
    TooLong(usize),
    #[error("topic name has the character {0:?}; only a-z, 0-9, '_', '.', ':' and '-' are allowed")]
    BadChar(char),
}

/// Checks a topic name against the protocol's grammar.
pub fn validate_topic(name: &str) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    if name.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong(name.len()));
    }
    match name
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | ':' | '-'))
    {
        Some(c) => Err(TopicError::BadChar(c)),
        None => Ok(()),
    }
}

/// Topic names built from ids, each checked: `workflow:{id}`, `agent:{name}`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Workflow,
    Agent,
    Session,
    User,
}

impl TopicKind {
    fn prefix(self) -> &'static str {
        match self {
            TopicKind::Workflow => "workflow",
            TopicKind::Agent => "agent",
            TopicKind::Session => "session",
            TopicKind::User => "user",
        }
    }

    /// The topic for an id, or why the id makes an invalid name.
    pub fn topic(self, id: &str) -> Result<String, TopicError> {
        let name = format!("{}:{}", self.prefix(), id);
        if id.is_empty() {
            return Err(TopicError::Empty);
        }
        validate_topic(&name).map(|()| name)
    }
}

impl fmt::Display for TopicKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_grammar() {
        for ok in ["metrics", "workflow:abc-1", "a.b_c:d-e", "0", &"x".repeat(128)] {
            assert_eq!(validate_topic(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_what_is_outside_it() {
        assert_eq!(validate_topic(""), Err(TopicError::Empty));
        assert_eq!(validate_topic(&"x".repeat(129)), Err(TopicError::TooLong(129)));
        assert_eq!(validate_topic("Metrics"), Err(TopicError::BadChar('M')));
        assert_eq!(validate_topic("a b"), Err(TopicError::BadChar(' ')));
        assert_eq!(validate_topic("a/b"), Err(TopicError::BadChar('/')));
        assert_eq!(validate_topic("é"), Err(TopicError::BadChar('é')));
    }

    #[test]
    fn builds_topics_from_ids() {
        assert_eq!(TopicKind::Workflow.topic("42").as_deref(), Ok("workflow:42"));
        assert_eq!(TopicKind::Agent.topic("local").as_deref(), Ok("agent:local"));
        assert_eq!(TopicKind::User.topic(""), Err(TopicError::Empty));
        assert_eq!(TopicKind::Session.topic("A"), Err(TopicError::BadChar('A')));
    }
}
