//! Where a stage runs, and running it there. An external run's stages go to its
//! executor; a stage that asks `runs_on` (`["gpu"]`) waits for a connected agent with
//! those capabilities and a free place (the run says it waits for one; past the wait,
//! it fails saying why); every other stage runs here, as a process of the server's.
//! A stage whose agent is lost is queued again as many times as its `retries` allow.

use super::interpreter::{StageOutput, StageTarget};
use super::lifecycle::StageNotices;
use super::pipeline::StageDef;
use super::process::{run_process, Control, ProcessSpec, StageEnd};
use super::{topic_of, Engine, Entry};
use crate::agents::remote::RemoteStage;
use crate::agents::LOCAL_AGENT;
use app::protocol::{names, LogLevel, LogLine, StageKey, StageWork};
use tokio::sync::mpsc;

/// Where a stage goes: here, or (several nodes) to another node, whose agent it needs.
pub(super) enum Placed {
    Run(Placement),
    MoveTo { node: String, agent: String },
}

/// How often a stage waiting for an agent looks for one connected to another node.
const LOOK_ELSEWHERE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Where a stage runs.
pub(super) enum Placement {
    Local,
    /// On an agent; `resume` is the first report seq when taking up a stage it still
    /// runs (after a server restart), None for new work.
    Agent { name: String, resume: Option<u64> },
}

impl Engine {
    /// Where stage `stage` of run `id` goes; Err(why) when no agent came in time (its
    /// wait counted from `since`: a move that could not be made does not restart it).
    /// With several nodes, an agent connected to another node is looked for too.
    pub(super) async fn place(&self, id: &str, executor: Option<&str>, stage: &StageDef, key: &StageKey, since: tokio::time::Instant) -> Result<Placed, String> {
        if let Some(executor) = executor {
            return Ok(Placed::Run(Placement::Agent { name: executor.to_owned(), resume: None }));
        }
        if stage.runs_on.is_empty() {
            return Ok(Placed::Run(Placement::Local));
        }
        let registry = &self.inner.agents;
        let wait = stage.agent_timeout_s.map(std::time::Duration::from_secs).unwrap_or(registry.config().wait);
        let needs = stage.runs_on.join(", ");
        if let Some(name) = self.claim_now(stage, key) {
            return Ok(Placed::Run(Placement::Agent { name, resume: None }));
        }
        if let Some((node, agent)) = self.agent_elsewhere(&stage.runs_on).await {
            return Ok(Placed::MoveTo { node, agent });
        }
        if since.elapsed() < LOOK_ELSEWHERE_EVERY {
            let message = format!("stage {:?} is waiting for an agent with {needs}", stage.id);
            let _ = self.inner.hub.publish(&topic_of(id), names::LOG_LINE, &LogLine { level: LogLevel::Notice, message }).await;
        }
        let deadline = since + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // set once the node has started (a run taken up at start-up waits here first)
            let slice = if self.inner.presence.get().is_some() { left.min(LOOK_ELSEWHERE_EVERY) } else { left };
            if let Some(name) = registry.wait_for_agent(&stage.runs_on, key, slice).await {
                return Ok(Placed::Run(Placement::Agent { name, resume: None }));
            }
            if let Some((node, agent)) = self.agent_elsewhere(&stage.runs_on).await {
                return Ok(Placed::MoveTo { node, agent });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("no agent with {needs} was free within {} s", wait.as_secs()));
            }
        }
    }

    fn claim_now(&self, stage: &StageDef, key: &StageKey) -> Option<String> {
        futures::FutureExt::now_or_never(self.inner.agents.wait_for_agent(&stage.runs_on, key, std::time::Duration::ZERO)).flatten()
    }

    /// Runs stage `index` where `placement` says; the stage's output goes to `output`.
    pub(super) async fn execute(
        &self,
        entry: &Entry,
        index: usize,
        stage: &StageDef,
        key: &StageKey,
        placement: &Placement,
        dequeued: std::time::Instant,
        controls: &mut mpsc::UnboundedReceiver<Control>,
    ) -> (StageEnd, u64) {
        let hub = &self.inner.hub;
        let id = &key.run;
        let run_dir = self.inner.config.runs_dir.join(id);
        let artifacts_dir = run_dir.join("artifacts");
        // a run taken over from another node has no folder here yet (a failure to make
        // it shows as the stage's start error)
        let _ = std::fs::create_dir_all(&artifacts_dir);
        let target = StageTarget { hub: hub.clone(), topic: topic_of(id), workflow_id: id.clone(), stage_id: stage.id.clone(), artifacts_dir: artifacts_dir.clone() };
        let notices = StageNotices { engine: self, entry, index };
        let mut output = StageOutput::new(target, &notices, entry.output.clone());
        let latency = &hub.counters().stage_start_latency;
        let mut on_started = || latency.observe(dequeued.elapsed().as_secs_f64());
        let end = match placement {
            Placement::Local => {
                let vars = vec![
                    ("SWITCHBOARD_WORKFLOW_ID".into(), id.clone()),
                    ("SWITCHBOARD_STAGE_ID".into(), stage.id.clone()),
                    ("SWITCHBOARD_ARTIFACTS".into(), artifacts_dir.display().to_string()),
                    ("SWITCHBOARD_PIPELINES".into(), self.inner.config.pipelines_dir.display().to_string()),
                ];
                let spec = ProcessSpec::for_stage(stage, &run_dir, vars, self.inner.env_deny.clone(), self.inner.config.cancel_grace);
                run_process(&spec, controls, &mut output, &mut on_started).await
            }
            Placement::Agent { name, resume } => {
                let remote = RemoteStage {
                    registry: self.inner.agents.clone(),
                    agent: name.clone(),
                    key: key.clone(),
                    work: work_of(stage, self.inner.config.cancel_grace.as_secs()),
                    vars: [("SWITCHBOARD_WORKFLOW_ID".to_owned(), id.clone()), ("SWITCHBOARD_STAGE_ID".to_owned(), stage.id.clone())].into(),
                    assign: resume.is_none(),
                    next_seq: resume.unwrap_or(1),
                    store: self.inner.store.clone(),
                };
                remote.run(controls, &mut output, &mut on_started).await
            }
        };
        (end, output.dropped)
    }

    /// The name of where it runs, for the stage's status and the registry.
    pub(super) fn agent_name(placement: &Placement) -> &str {
        match placement {
            Placement::Local => LOCAL_AGENT,
            Placement::Agent { name, .. } => name,
        }
    }
}

/// The work an agent is given for a stage: what a local process would run.
fn work_of(stage: &StageDef, cancel_grace_s: u64) -> StageWork {
    StageWork {
        run: stage.run.clone(),
        env: stage.env.clone(),
        timeout_s: stage.timeout_s,
        chat_stdin: stage.stdin == Some(super::pipeline::StdinMode::Chat),
        workdir: stage.workdir.as_ref().map(|w| w.display().to_string()),
        cancel_grace_s,
    }
}
