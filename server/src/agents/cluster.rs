//! The registry's side of several nodes (engine::agent_moves): its agents' statuses
//! shared with the other nodes, theirs published on this node's topics, stages that
//! agents bring along from another node, and those they were told to drop.

use super::{lock, status, AgentStatus, Bring, Registry, StageKey, DROPPED_KEPT, LOCAL_AGENT, SHARE_FIGURES_EVERY};
use std::collections::HashMap;
use tokio::sync::mpsc;

impl Registry {
    /// Other nodes' agents, as they see them now (several nodes only): each that is
    /// not connected here and changed since is published on this node's `agents` and
    /// `agent:{name}`, so a dashboard of any node follows every agent.
    pub async fn publish_elsewhere(&self, seen: Vec<AgentStatus>) {
        let mut changed = Vec::new();
        {
            let here = lock(&self.inner.agents);
            let mut elsewhere = lock(&self.inner.elsewhere);
            let mut now: HashMap<String, AgentStatus> = HashMap::new();
            for s in seen {
                if here.get(&s.agent_name).is_some_and(|a| a.conn.is_some() || a.local) {
                    continue;
                }
                // the connected one first, when several nodes know of it
                match now.get(&s.agent_name) {
                    Some(kept) if kept.status != app::protocol::AgentState::Offline => {}
                    _ => {
                        now.insert(s.agent_name.clone(), s);
                    }
                }
            }
            for (name, s) in &now {
                let before = elsewhere.get(name).map(|b| AgentStatus { last_seen: None, machine: None, ..b.clone() });
                if before != Some(AgentStatus { last_seen: None, machine: None, ..s.clone() }) {
                    changed.push(s.clone());
                }
            }
            // gone from every other node: this node's own view of it again
            let gone: Vec<String> = elsewhere.keys().filter(|n| !now.contains_key(*n)).cloned().collect();
            *elsewhere = now;
            for name in gone {
                if let Some(a) = here.get(&name) {
                    changed.push(status::of(&name, a, self.inner.config));
                }
            }
        }
        for s in changed {
            status::publish(&self.inner.hub, &s).await;
        }
    }

    /// From now on every status goes to `tx` too (several nodes: engine::agent_moves),
    /// starting with every agent's now. The server's own executor is not shared.
    pub fn share_with(&self, tx: mpsc::UnboundedSender<(AgentStatus, bool)>) {
        if self.inner.shared.set(tx).is_err() {
            return;
        }
        let agents = lock(&self.inner.agents);
        for (name, a) in agents.iter() {
            self.share(&status::of(name, a, self.inner.config), a.conn.is_some());
        }
    }

    /// Sets how a stage of another node's run is brought here (several nodes only).
    pub fn bring_with(&self, bring: Bring) {
        let _ = self.inner.bring.set(bring);
    }

    /// Brings stage `key`, which agent `name` says it runs, when another node's run
    /// holds it; whether it runs here now.
    pub async fn bring(&self, key: &StageKey, name: &str) -> bool {
        match self.inner.bring.get() {
            Some(bring) => bring(key.clone(), name.to_owned()).await,
            None => false,
        }
    }

    /// Its agent was told to drop stage `key` (it was not running here).
    pub fn told_to_drop(&self, key: &StageKey) {
        let mut dropped = lock(&self.inner.dropped);
        if dropped.len() >= DROPPED_KEPT {
            dropped.pop_front();
        }
        dropped.push_back(key.clone());
    }

    /// Whether an agent was told lately to drop stage `key`.
    pub fn was_told_to_drop(&self, key: &StageKey) -> bool {
        lock(&self.inner.dropped).contains(key)
    }

    /// To the other nodes: each change, but the machine's figures (sent with every
    /// metrics message) only now and then, for each is a database write.
    pub(super) fn share(&self, status: &AgentStatus, connected: bool) {
        let Some(tx) = self.inner.shared.get().filter(|_| status.agent_name != LOCAL_AGENT) else { return };
        let plain = AgentStatus { machine: None, last_seen: None, ..status.clone() };
        let now = std::time::Instant::now();
        let mut last = lock(&self.inner.last_shared);
        if let Some((before, was_connected, at)) = last.get(&status.agent_name) {
            if *before == plain && *was_connected == connected && now.duration_since(*at) < SHARE_FIGURES_EVERY {
                return;
            }
        }
        last.insert(status.agent_name.clone(), (plain, connected, now));
        // sent under the lock: two changes go out in the order they were compared
        let _ = tx.send((status.clone(), connected));
    }
}
