//! One run as its page shows it: the snapshot's structure, brought up to date by every
//! event of `workflow:{id}` in seq order. Terminal output is handed back to the caller
//! (it goes to the terminal buffer, which is kept apart for speed). Plain Rust, tested
//! on the host.

use crate::protocol::{
    names, Artifact, Chat, EventMessage, LogLine, MetricScalar, Notification, Progress, StageSnapshot, StageState,
    StageStatus, TerminalOutput, TimestampMs, WorkflowSnapshot, WorkflowState, WorkflowStatus,
};
use std::collections::BTreeMap;

/// One metric's points, (step, value), in arrival order.
pub type Series = Vec<(f64, f64)>;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowModel {
    pub id: String,
    pub name: String,
    pub state: Option<WorkflowState>,
    pub progress: f64,
    pub stage_index: Option<usize>,
    pub eta_s: Option<f64>,
    pub created_at: Option<TimestampMs>,
    pub started_at: Option<TimestampMs>,
    pub finished_at: Option<TimestampMs>,
    pub error: Option<String>,
    pub stages: Vec<StageSnapshot>,
    /// The last `progress` message, and the stage it came from.
    pub message: Option<String>,
    pub artifacts: Vec<Artifact>,
    pub metrics: BTreeMap<String, Series>,
    pub chat: Vec<Chat>,
    pub logs: Vec<LogLine>,
    pub notifications: Vec<Notification>,
}

/// What an event meant, beyond the model's own fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Lines for the terminal.
    Terminal(TerminalOutput),
    /// A notification to show.
    Notify(Notification),
    /// The run's state changed (from, to).
    State(Option<WorkflowState>, WorkflowState),
    Other,
}

impl WorkflowModel {
    pub fn from_snapshot(s: &WorkflowSnapshot) -> Self {
        WorkflowModel {
            id: s.id.clone(),
            name: s.name.clone(),
            state: Some(s.state),
            progress: s.progress,
            stage_index: s.stage_index,
            eta_s: s.eta_s,
            created_at: Some(s.created_at),
            started_at: s.started_at,
            finished_at: s.finished_at,
            error: s.error.clone(),
            stages: s.stages.clone(),
            ..WorkflowModel::default()
        }
    }

    /// The state before any event: stages pending, no progress (a replay from seq 1
    /// then rebuilds everything, so the page and the log can never disagree).
    pub fn initial(s: &WorkflowSnapshot) -> Self {
        let mut m = WorkflowModel::from_snapshot(s);
        m.state = None;
        m.progress = 0.0;
        m.stage_index = None;
        m.eta_s = None;
        m.started_at = None;
        m.finished_at = None;
        m.error = None;
        m.stages.iter_mut().for_each(StageSnapshot::reset);
        m
    }

    pub fn apply(&mut self, ev: &EventMessage) -> Applied {
        match ev.event.as_str() {
            names::WORKFLOW_STATUS => match ev.payload::<WorkflowStatus>() {
                Ok(s) => {
                    let from = self.state;
                    self.state = Some(s.state);
                    self.progress = s.progress;
                    self.stage_index = s.stage_index;
                    self.eta_s = s.eta_s;
                    match s.state {
                        WorkflowState::Running if self.started_at.is_none() => self.started_at = Some(ev.ts),
                        WorkflowState::Pending => {
                            self.finished_at = None;
                            self.error = None;
                        }
                        st if st.is_finished() => self.finished_at = Some(ev.ts),
                        _ => {}
                    }
                    Applied::State(from, s.state)
                }
                Err(_) => Applied::Other,
            },
            names::STAGE_STATUS => {
                if let Ok(s) = ev.payload::<StageStatus>() {
                    self.apply_stage(s);
                }
                Applied::Other
            }
            names::PROGRESS => {
                if let Ok(p) = ev.payload::<Progress>() {
                    self.progress = p.progress;
                    self.eta_s = p.eta_s;
                    if let Some(m) = p.message {
                        self.message = Some(m);
                    }
                    let n = self.stages.len().max(1) as f64;
                    if let Some(stage) = p.stage.and_then(|id| self.stages.iter_mut().find(|s| s.id == id)) {
                        // the stage's own share, from the overall figure
                        let done = stage.index as f64;
                        stage.progress = (p.progress * n - done).clamp(0.0, 1.0);
                    }
                }
                Applied::Other
            }
            names::TERMINAL_OUTPUT => match ev.payload::<TerminalOutput>() {
                Ok(t) => Applied::Terminal(t),
                Err(_) => Applied::Other,
            },
            names::METRIC_SCALAR => {
                if let Ok(m) = ev.payload::<MetricScalar>() {
                    let series = self.metrics.entry(m.name).or_default();
                    let step = m.step.map_or(series.len() as f64, |s| s as f64);
                    series.push((step, m.value));
                }
                Applied::Other
            }
            names::ARTIFACT => {
                if let Ok(a) = ev.payload::<Artifact>() {
                    self.artifacts.retain(|x| x.name != a.name);
                    self.artifacts.push(a);
                }
                Applied::Other
            }
            names::CHAT => {
                if let Ok(c) = ev.payload::<Chat>() {
                    self.chat.push(c);
                }
                Applied::Other
            }
            names::LOG_LINE => {
                if let Ok(l) = ev.payload::<LogLine>() {
                    self.logs.push(l);
                }
                Applied::Other
            }
            names::NOTIFICATION => match ev.payload::<Notification>() {
                Ok(n) => {
                    self.notifications.push(n.clone());
                    Applied::Notify(n)
                }
                Err(_) => Applied::Other,
            },
            _ => Applied::Other,
        }
    }

    fn apply_stage(&mut self, s: StageStatus) {
        let Some(stage) = self.stages.iter_mut().find(|st| st.id == s.stage.id) else { return };
        stage.status = s.stage.status;
        stage.started_at = s.started_at;
        stage.finished_at = s.finished_at;
        stage.exit_code = s.exit_code;
        stage.error = s.error;
        match s.stage.status {
            StageState::Pending => stage.progress = 0.0,
            StageState::Completed | StageState::WaitingConfirmation => stage.progress = 1.0,
            _ => {}
        }
    }

    /// The stage waiting for a person, if any.
    pub fn waiting_stage(&self) -> Option<&StageSnapshot> {
        self.stages.iter().find(|s| s.status == StageState::WaitingConfirmation)
    }

    /// The failed stage a Retry would rerun.
    pub fn failed_stage(&self) -> Option<&StageSnapshot> {
        self.stages.iter().find(|s| s.status == StageState::Failed)
    }
}

/// "1 h 02 min", "3 min 05 s", "12 s": a duration for people.
pub fn human_duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot() -> WorkflowSnapshot {
        serde_json::from_value(json!({
            "id":"w1","name":"train","state":"running","progress":0.5,"stage_index":1,"eta_s":3.0,
            "created_at":1,"started_at":2,"finished_at":null,"error":null,"seq":7,"epoch":"e",
            "stages":[
                {"id":"a","name":"Prepare","index":0,"status":"completed","progress":1.0,"confirm":false,"started_at":2,"finished_at":3,"exit_code":0,"error":null},
                {"id":"b","name":"Train","index":1,"status":"running","progress":0.0,"confirm":true,"started_at":3,"finished_at":null,"exit_code":null,"error":null}
            ]}))
        .unwrap()
    }

    fn ev(seq: u64, event: &str, data: serde_json::Value) -> EventMessage {
        let data = serde_json::value::to_raw_value(&data).unwrap();
        EventMessage { topic: "workflow:w1".into(), seq, ts: 100 + seq as i64, event: event.into(), data }
    }

    #[test]
    fn initial_is_the_state_before_any_event() {
        let m = WorkflowModel::initial(&snapshot());
        assert_eq!(m.state, None);
        assert!(m.stages.iter().all(|s| s.status == StageState::Pending && s.started_at.is_none()));
        assert_eq!(m.stages[1].name, "Train");
        assert!(m.stages[1].confirm);
    }

    #[test]
    fn events_drive_states_progress_and_stages() {
        let mut m = WorkflowModel::initial(&snapshot());
        let a = m.apply(&ev(1, "workflow_status", json!({"state":"running","progress":0.0,"stage_index":0,"eta_s":null})));
        assert_eq!(a, Applied::State(None, WorkflowState::Running));
        assert_eq!(m.started_at, Some(101));
        m.apply(&ev(2, "stage_status", json!({"stage":{"id":"b","index":1,"status":"running"},"started_at":5,"finished_at":null,"exit_code":null,"error":null})));
        m.apply(&ev(3, "progress", json!({"progress":0.75,"stage":"b","message":"epoch 4","eta_s":12.5})));
        assert_eq!(m.stages[1].status, StageState::Running);
        assert_eq!(m.stages[1].progress, 0.5);
        assert_eq!((m.progress, m.eta_s, m.message.as_deref()), (0.75, Some(12.5), Some("epoch 4")));
        m.apply(&ev(4, "stage_status", json!({"stage":{"id":"b","index":1,"status":"failed"},"started_at":5,"finished_at":9,"exit_code":3,"error":"stage \"b\" exited with code 3"})));
        assert_eq!(m.failed_stage().map(|s| s.exit_code), Some(Some(3)));
        let a = m.apply(&ev(5, "workflow_status", json!({"state":"failed","progress":0.75,"stage_index":null,"eta_s":null})));
        assert_eq!(a, Applied::State(Some(WorkflowState::Running), WorkflowState::Failed));
        assert_eq!(m.finished_at, Some(105));
    }

    #[test]
    fn metrics_artifacts_chat_and_output() {
        let mut m = WorkflowModel::initial(&snapshot());
        m.apply(&ev(1, "metric_scalar", json!({"name":"loss","value":2.0,"step":1})));
        m.apply(&ev(2, "metric_scalar", json!({"name":"loss","value":1.0,"step":2})));
        m.apply(&ev(3, "metric_scalar", json!({"name":"acc","value":0.5,"step":null})));
        assert_eq!(m.metrics["loss"], vec![(1.0, 2.0), (2.0, 1.0)]);
        assert_eq!(m.metrics["acc"], vec![(0.0, 0.5)]);
        let art = json!({"stage_id":"b","name":"f.png","kind":"image","url":"/u","bytes":3});
        m.apply(&ev(4, "artifact", art.clone()));
        m.apply(&ev(5, "artifact", art));
        assert_eq!(m.artifacts.len(), 1, "the same name again replaces it");
        m.apply(&ev(6, "chat", json!({"from":"ann","text":"hi"})));
        assert_eq!(m.chat[0].text, "hi");
        let t = m.apply(&ev(7, "terminal_output", json!({"stage_id":"b","stream":"stdout","output":"x\n"})));
        assert!(matches!(t, Applied::Terminal(o) if o.output == "x\n"));
        let n = m.apply(&ev(8, "notification", json!({"title":"t","message":"m","priority":"high"})));
        assert!(matches!(n, Applied::Notify(_)));
        assert_eq!(m.apply(&ev(9, "something_else", json!(null))), Applied::Other);
        assert_eq!(m.apply(&ev(10, "metric_scalar", json!({"bad":true}))), Applied::Other);
    }

    #[test]
    fn the_confirmation_gate_and_a_restart() {
        let mut m = WorkflowModel::initial(&snapshot());
        m.apply(&ev(1, "stage_status", json!({"stage":{"id":"b","index":1,"status":"waiting_confirmation"},"started_at":1,"finished_at":2,"exit_code":0,"error":null})));
        assert_eq!(m.waiting_stage().map(|s| s.id.as_str()), Some("b"));
        m.apply(&ev(2, "workflow_status", json!({"state":"failed","progress":0.5,"stage_index":null,"eta_s":null})));
        m.apply(&ev(3, "workflow_status", json!({"state":"pending","progress":0.5,"stage_index":null,"eta_s":null})));
        assert_eq!(m.finished_at, None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(12.4), "12 s");
        assert_eq!(human_duration(185.0), "3 min 05 s");
        assert_eq!(human_duration(3720.0), "1 h 02 min");
        assert_eq!(human_duration(-3.0), "0 s");
    }
}
