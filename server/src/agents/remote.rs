//! The engine's side of a stage an agent runs: the work is sent (`assign`), or taken up
//! again after a restart; the agent's reports become what a local process's output
//! would (the same `OutputSink`); pause, resume, cancel and chat go to it as signals; a
//! timeout cancels it; and an agent that is neither connected nor reporting for the
//! grace period is lost. A report is acknowledged (`applied`) once what it produced
//! and its seq are on disk, so an agent forgets only what a server crash cannot lose.

use super::Registry;
use crate::engine::process::{Control, OutputSink, StageEnd};
use crate::storage::{Store, Write};
use app::protocol::{MessageId, ReportKind, ServerToAgent, StageKey, StageSignal, StageWork};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How often liveness is looked at besides the wake-ups.
const LIVENESS_TICK: Duration = Duration::from_millis(500);
/// After a cancel, how long past the agent's own grace it gets to say it ended.
const CANCEL_SLACK: Duration = Duration::from_secs(5);
/// How long an ended stage waits for its last reports to reach the disk.
const ACK_WAIT: Duration = Duration::from_secs(10);

pub struct RemoteStage {
    pub registry: Registry,
    pub agent: String,
    pub key: StageKey,
    pub work: StageWork,
    pub vars: BTreeMap<String, String>,
    /// False when taking up a stage the agent still runs (after a server restart).
    pub assign: bool,
    /// The seq of the first report to apply.
    pub next_seq: u64,
    pub store: Store,
}

fn message_id(key: &StageKey, what: &str) -> MessageId {
    MessageId::Text(format!("{what}:{}/{}/{}", key.run, key.stage, key.attempt))
}

impl RemoteStage {
    fn signal(&self, action: StageSignal) -> bool {
        let id = message_id(&self.key, "signal");
        self.registry.send(&self.agent, ServerToAgent::Signal { id, key: self.key.clone(), action })
    }

    fn assign_now(&self) -> bool {
        let msg = ServerToAgent::Assign { id: message_id(&self.key, "assign"), key: self.key.clone(), work: self.work.clone(), vars: self.vars.clone() };
        self.registry.send(&self.agent, msg)
    }

    /// Runs it to its end; `on_started` once the agent says it started.
    pub async fn run(self, controls: &mut mpsc::UnboundedReceiver<Control>, sink: &mut dyn OutputSink, on_started: &mut (dyn FnMut() + Send)) -> StageEnd {
        let (slot, mut reports) = self.registry.take_slot(self.key.clone(), &self.agent, self.next_seq);
        let grace = self.registry.config().grace;
        let mut assigned = !self.assign || self.assign_now();
        let far = Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600);
        let deadline = self.work.timeout_s.map(|t| Instant::now() + Duration::from_secs(t));
        let (mut cancelled, mut timed_out) = (false, false);
        let mut give_up_at: Option<Instant> = None;
        let mut controls_open = true;
        let mut tick = tokio::time::interval(LIVENESS_TICK);
        // (write number, seq): reports applied whose AppliedSeq is not on disk yet
        let mut pending: VecDeque<(u64, u64)> = VecDeque::new();
        let health = self.store.health().clone();
        let end = loop {
            let wake = slot.wake.notified();
            let commit = health.next_commit();
            self.acknowledge(&slot, &mut pending);
            let flush_at = sink.flush_at();
            tokio::select! {
                _ = commit, if !pending.is_empty() => {}
                report = reports.recv() => match report {
                    Some((seq, kind)) => {
                        let ended = match kind {
                            ReportKind::Started => {
                                on_started();
                                None
                            }
                            ReportKind::Output { stream, lines } => {
                                for line in lines {
                                    sink.line(stream, line).await;
                                }
                                None
                            }
                            ReportKind::Paused { paused } => {
                                sink.paused(paused).await;
                                None
                            }
                            ReportKind::Finished { exit_code, error, cancelled: by_executor } => Some(match (exit_code, error) {
                                _ if timed_out => StageEnd::TimedOut,
                                _ if by_executor => StageEnd::Cancelled,
                                (Some(code), _) if cancelled && code != 0 => StageEnd::Cancelled,
                                (Some(code), _) => StageEnd::Exited(code),
                                (None, _) if cancelled => StageEnd::Cancelled,
                                (None, error) => StageEnd::Failed(error.unwrap_or_else(|| "the executor says the stage failed".into())),
                            }),
                        };
                        // after its events, published now: the writer stores them
                        // first, so after a crash the seq stored never runs ahead of
                        // what was stored (the agent batches its lines already)
                        sink.flush().await;
                        let n = self.store.write(Write::AppliedSeq {
                            workflow_id: self.key.run.clone(),
                            stage: self.key.stage.clone(),
                            attempt: i64::from(self.key.attempt),
                            seq: seq as i64,
                        }).await;
                        pending.push_back((n, seq));
                        if let Some(end) = ended {
                            break end;
                        }
                    }
                    None => break StageEnd::AgentLost(format!("agent {:?} stopped reporting", self.agent)),
                },
                ctl = controls.recv(), if controls_open => match ctl {
                    Some(Control::Pause) => { self.signal(StageSignal::Pause); }
                    Some(Control::Resume) => { self.signal(StageSignal::Resume); }
                    Some(Control::Cancel) => {
                        cancelled = true;
                        self.signal(StageSignal::Cancel);
                        give_up_at.get_or_insert(Instant::now() + Duration::from_secs(self.work.cancel_grace_s) + CANCEL_SLACK);
                    }
                    Some(Control::Chat(text)) => {
                        let id = message_id(&self.key, "chat");
                        self.registry.send(&self.agent, ServerToAgent::Chat { id, key: self.key.clone(), text });
                    }
                    Some(Control::Confirm) => {}
                    // one meant for an earlier stage (it ended first) is no concern of this one
                    Some(Control::Detach { key, to }) if key == self.key => break StageEnd::AgentLost(format!("agent {:?} connected to node {to}", self.agent)),
                    Some(Control::Detach { .. }) => {}
                    None => controls_open = false,
                },
                _ = wake => {}
                _ = tick.tick() => {}
                _ = tokio::time::sleep_until(flush_at.unwrap_or(far)), if flush_at.is_some() => sink.flush().await,
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() && !timed_out => {
                    timed_out = true;
                    self.signal(StageSignal::Cancel);
                    give_up_at.get_or_insert(Instant::now() + Duration::from_secs(self.work.cancel_grace_s) + CANCEL_SLACK);
                }
                _ = tokio::time::sleep_until(give_up_at.unwrap_or(far)), if give_up_at.is_some() => {
                    break if timed_out { StageEnd::TimedOut } else { StageEnd::Cancelled };
                }
            }
            if slot.take_missing() {
                // it registered again without this stage: the `assign` never reached it
                // (send it again), or it lost the stage after starting it
                if slot.next_seq().await > 1 {
                    break StageEnd::AgentLost(format!("agent lost: {:?} came back without stage {:?} (restarted?)", self.agent, self.key.stage));
                }
                assigned = false;
            }
            // liveness: connected, or reporting (an executor that reports over HTTP)
            let (last_seen, connected) = self.registry.liveness(&self.agent).unwrap_or((0, false));
            if connected && !assigned {
                assigned = self.assign_now();
            }
            let heard = last_seen.max(slot.last_report());
            if !connected && crate::hub::now_ms() - heard > grace.as_millis() as i64 {
                break StageEnd::AgentLost(format!("agent lost: {:?} silent for more than {} s", self.agent, grace.as_secs()));
            }
        };
        sink.flush().await;
        // the last reports' `applied`, once on disk (a stopping writer may never say)
        let until = Instant::now() + ACK_WAIT;
        while !pending.is_empty() && Instant::now() < until {
            let commit = health.next_commit();
            self.acknowledge(&slot, &mut pending);
            if !pending.is_empty() {
                let _ = tokio::time::timeout_at(until, commit).await;
            }
        }
        self.registry.close_slot(&self.key);
        end
    }

    /// Tells the agent which reports are on disk now (and the slot, for HTTP reports).
    fn acknowledge(&self, slot: &super::reports::Slot, pending: &mut VecDeque<(u64, u64)>) {
        let mut through = None;
        while let Some(&(n, seq)) = pending.front() {
            if !self.store.is_committed(n) {
                break;
            }
            pending.pop_front();
            through = Some(seq);
        }
        if let Some(seq) = through {
            slot.set_durable(seq);
            self.registry.send(&self.agent, ServerToAgent::Applied { key: self.key.clone(), seq });
        }
    }
}
