//! What the client sends: a bounded queue for messages sent while offline, flushed in
//! order on reconnect, and the bookkeeping of requests awaiting their reply by `id`.
//! Plain Rust, tested on the host.

use crate::protocol::{ClientEnvelope, ClientMessage, ErrorCode, ErrorMessage, MessageId};
use std::collections::{BTreeMap, VecDeque};

/// Most messages kept while offline (a person clicking, not a producer streaming).
pub const OFFLINE_QUEUE_MAX: usize = 100;

/// Why a message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("offline, and {0} messages are already waiting to be sent: try again once connected")]
    QueueFull(usize),
}

/// Messages waiting for a connection, oldest first.
#[derive(Debug)]
pub struct OfflineQueue {
    items: VecDeque<ClientEnvelope>,
    max: usize,
}

impl Default for OfflineQueue {
    fn default() -> Self {
        OfflineQueue::new(OFFLINE_QUEUE_MAX)
    }
}

impl OfflineQueue {
    pub fn new(max: usize) -> Self {
        OfflineQueue { items: VecDeque::new(), max: max.max(1) }
    }

    /// Keeps a message for the next connection; refuses it when the queue is full, so
    /// nothing already promised is dropped behind the sender's back.
    pub fn push(&mut self, msg: ClientEnvelope) -> Result<(), SendError> {
        if self.items.len() >= self.max {
            return Err(SendError::QueueFull(self.items.len()));
        }
        self.items.push_back(msg);
        Ok(())
    }

    /// Everything waiting, in the order it was sent.
    pub fn drain(&mut self) -> Vec<ClientEnvelope> {
        self.items.drain(..).collect()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Requests awaiting a reply, by the `id` the client gave them.
#[derive(Debug)]
pub struct Requests<T> {
    next: u64,
    /// Sent on the current connection: their reply may still come.
    sent: BTreeMap<String, T>,
    /// Queued while offline: sent (and moved to `sent`) on the next connection.
    queued: BTreeMap<String, T>,
}

impl<T> Default for Requests<T> {
    fn default() -> Self {
        Requests { next: 0, sent: BTreeMap::new(), queued: BTreeMap::new() }
    }
}

fn id_text(id: &MessageId) -> String {
    match id {
        MessageId::Text(s) => s.clone(),
        MessageId::Number(n) => n.to_string(),
    }
}

impl<T> Requests<T> {
    /// Gives `msg` a fresh id and remembers `waiter` for its reply.
    pub fn register(&mut self, msg: ClientMessage, waiter: T, online: bool) -> ClientEnvelope {
        self.next += 1;
        let id = format!("r{}", self.next);
        if online {
            self.sent.insert(id.clone(), waiter);
        } else {
            self.queued.insert(id.clone(), waiter);
        }
        ClientEnvelope::with_id(msg, id.as_str())
    }

    /// A queued message went out on a new connection.
    pub fn mark_sent(&mut self, env: &ClientEnvelope) {
        if let Some(id) = &env.id {
            let key = id_text(id);
            if let Some(w) = self.queued.remove(&key) {
                self.sent.insert(key, w);
            }
        }
    }

    /// A queued message could not be kept: forget its waiter.
    pub fn forget(&mut self, env: &ClientEnvelope) -> Option<T> {
        let key = id_text(env.id.as_ref()?);
        self.queued.remove(&key).or_else(|| self.sent.remove(&key))
    }

    /// The waiter of a reply (`ack` or `error`) carrying `id`.
    pub fn take(&mut self, id: &MessageId) -> Option<T> {
        self.sent.remove(&id_text(id))
    }

    /// The connection dropped: requests already sent will get no reply. Their waiters
    /// are handed back with the error to tell them; queued ones wait for the next.
    pub fn connection_lost(&mut self) -> Vec<(T, ErrorMessage)> {
        std::mem::take(&mut self.sent)
            .into_values()
            .map(|w| {
                let err = ErrorMessage::new(
                    ErrorCode::Internal,
                    "the connection dropped before the server answered: check the state before retrying",
                );
                (w, err)
            })
            .collect()
    }

    pub fn pending(&self) -> usize {
        self.sent.len() + self.queued.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ControlAction;

    fn pause() -> ClientMessage {
        ClientMessage::Control { action: ControlAction::Pause, workflow_id: Some("w".into()) }
    }

    #[test]
    fn the_offline_queue_keeps_order_and_refuses_when_full() {
        let mut q = OfflineQueue::new(2);
        q.push(ClientEnvelope::with_id(pause(), "a")).unwrap();
        q.push(ClientEnvelope::with_id(pause(), "b")).unwrap();
        assert_eq!(q.push(ClientEnvelope::with_id(pause(), "c")), Err(SendError::QueueFull(2)));
        let ids: Vec<_> = q.drain().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![Some("a".into()), Some("b".into())]);
        assert!(q.is_empty());
        q.push(ClientEnvelope::with_id(pause(), "d")).unwrap();
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn replies_find_their_waiter_once() {
        let mut r: Requests<&str> = Requests::default();
        let a = r.register(pause(), "first", true);
        let b = r.register(pause(), "second", true);
        assert_ne!(a.id, b.id);
        assert_eq!(r.take(a.id.as_ref().unwrap()), Some("first"));
        assert_eq!(r.take(a.id.as_ref().unwrap()), None, "a reply is consumed once");
        assert_eq!(r.pending(), 1);
    }

    #[test]
    fn a_lost_connection_fails_what_was_sent_and_keeps_what_was_queued() {
        let mut r: Requests<&str> = Requests::default();
        let sent = r.register(pause(), "sent", true);
        let queued = r.register(pause(), "queued", false);
        assert_eq!(r.take(queued.id.as_ref().unwrap()), None, "not sent yet: no reply can be its");
        let failed = r.connection_lost();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "sent");
        assert_eq!(failed[0].1.code, ErrorCode::Internal);
        assert_eq!(r.take(sent.id.as_ref().unwrap()), None);
        r.mark_sent(&queued);
        assert_eq!(r.take(queued.id.as_ref().unwrap()), Some("queued"));
    }

    #[test]
    fn a_message_that_could_not_be_queued_forgets_its_waiter() {
        let mut r: Requests<&str> = Requests::default();
        let env = r.register(pause(), "w", false);
        assert_eq!(r.forget(&env), Some("w"));
        assert_eq!(r.pending(), 0);
    }
}
