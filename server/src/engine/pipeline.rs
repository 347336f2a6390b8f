//! Pipelines: ordered stages, each a shell command, from TOML files in the pipelines
//! folder or posted inline as JSON. Every problem is reported with the field it is
//! about; a bad file is reported with its path and line, and the others still load.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Longest stage timeout accepted: a week.
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// An external run's executor: the agent (an app's backend, or a `switchboard agent`)
    /// that runs every stage itself; its stages have no `run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    pub stages: Vec<StageDef>,
}

/// Where a stage's standard input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdinMode {
    /// Each chat message of the workflow, as one JSON line.
    Chat,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDef {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// A shell command, run with `sh -c` (none in an external run: its executor knows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Capabilities an agent must have to run it (`["gpu"]`): it goes to a connected
    /// agent that has them all, never to the server itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs_on: Vec<String>,
    /// Times it is queued again when its agent is lost mid-stage (0: it fails).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// Seconds it may wait for an agent with its capabilities (default: the server's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_timeout_s: Option<u64>,
    /// Wait in `waiting_confirmation` after success until someone confirms.
    #[serde(default)]
    pub confirm: bool,
    #[serde(default)]
    pub timeout_s: Option<u64>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory, relative to the server's (default: the run's folder).
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    #[serde(default)]
    pub stdin: Option<StdinMode>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl StageDef {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// Agent names and capabilities: what an `agent:{name}` topic allows, 1 to 64 of
/// `a-z 0-9 _ . -`.
pub fn valid_agent_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '.' | '-'))
}

impl Pipeline {
    /// The definition as `GET /api/v1/pipelines` shows it: every stage's `env` values
    /// replaced (they may hold credentials), the names kept.
    pub fn redacted(&self) -> Pipeline {
        let mut p = self.clone();
        for s in &mut p.stages {
            for v in s.env.values_mut() {
                *v = REDACTED.into();
            }
        }
        p
    }
}

/// What a redacted `env` value reads.
pub const REDACTED: &str = "(redacted)";

/// What is wrong with a definition: the field, and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PipelineError {
    pub field: String,
    pub problem: String,
}

fn err(field: impl Into<String>, problem: impl Into<String>) -> PipelineError {
    PipelineError { field: field.into(), problem: problem.into() }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-'))
}

impl Pipeline {
    pub fn validate(&self, max_stages: usize) -> Result<(), PipelineError> {
        if self.name.trim().is_empty() {
            return Err(err("name", "must not be empty"));
        }
        if self.stages.is_empty() {
            return Err(err("stages", "a pipeline needs at least one stage"));
        }
        if self.stages.len() > max_stages {
            return Err(err(
                "stages",
                format!("{} stages is over the limit of {max_stages} (SWITCHBOARD_MAX_STAGES)", self.stages.len()),
            ));
        }
        if let Some(e) = self.executor.as_deref().filter(|e| !valid_agent_name(e)) {
            return Err(err("executor", format!("{e:?} is not an agent name (1-64 of a-z, 0-9, '_', '.', '-')")));
        }
        let mut seen = HashSet::new();
        for (i, s) in self.stages.iter().enumerate() {
            let at = |f: &str| format!("stages[{i}].{f}");
            if !valid_id(&s.id) {
                return Err(err(at("id"), format!("{:?} must be 1-64 letters, digits, '_' or '-'", s.id)));
            }
            if !seen.insert(s.id.as_str()) {
                return Err(err(at("id"), format!("duplicate stage id {:?}", s.id)));
            }
            match (&self.executor, &s.run) {
                (None, None) => {
                    return Err(err(at("run"), "a stage needs `run` (a shell command), unless the pipeline names an `executor` that runs it"))
                }
                (None, Some(run)) if run.trim().is_empty() => return Err(err(at("run"), "must not be empty")),
                (Some(executor), Some(_)) => {
                    return Err(err(at("run"), format!("the stages of an external run are run by its executor {executor:?}: they have no `run`")))
                }
                _ => {}
            }
            if let Some(c) = s.runs_on.iter().find(|c| !valid_agent_name(c)) {
                return Err(err(at("runs_on"), format!("{c:?} is not a capability name (1-64 of a-z, 0-9, '_', '.', '-')")));
            }
            if self.executor.is_some() && !s.runs_on.is_empty() {
                return Err(err(at("runs_on"), "an external run's stages all go to its executor"));
            }
            match s.timeout_s {
                Some(0) => return Err(err(at("timeout_s"), "must be at least 1 second")),
                Some(t) if t > MAX_TIMEOUT_S => {
                    return Err(err(at("timeout_s"), format!("{t} is over the maximum of {MAX_TIMEOUT_S} (a week)")))
                }
                _ => {}
            }
            if let Some(k) = s.env.keys().find(|k| k.is_empty() || k.contains('=') || k.contains('\0')) {
                return Err(err(at("env"), format!("{k:?} is not a valid variable name")));
            }
        }
        Ok(())
    }

    /// Parses and validates a pipeline posted as JSON.
    pub fn from_json(value: serde_json::Value, max_stages: usize) -> Result<Pipeline, PipelineError> {
        let p: Pipeline = serde_json::from_value(value).map_err(|e| err("pipeline", e.to_string()))?;
        p.validate(max_stages)?;
        Ok(p)
    }

    /// Parses and validates a TOML file's text; errors carry the line.
    pub fn from_toml(text: &str, max_stages: usize) -> Result<Pipeline, PipelineError> {
        let p: Pipeline = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let field = match line {
                Some(l) => format!("line {l}"),
                None => "toml".into(),
            };
            err(field, e.message().to_owned())
        })?;
        p.validate(max_stages)?;
        Ok(p)
    }
}

/// Every `*.toml` pipeline in a folder: the good ones, and an error per bad file.
pub fn load_folder(dir: &Path, max_stages: usize) -> (Vec<Pipeline>, Vec<String>) {
    let mut pipelines = Vec::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(format!("{}: cannot read the pipelines folder: {e}", dir.display()));
            return (pipelines, errors);
        }
    };
    let mut paths: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
    paths.sort();
    for path in paths {
        match std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| {
            Pipeline::from_toml(&t, max_stages).map_err(|e| e.to_string())
        }) {
            Ok(p) if pipelines.iter().any(|q: &Pipeline| q.name == p.name) => {
                errors.push(format!("{}: a pipeline named {:?} is already loaded", path.display(), p.name))
            }
            Ok(p) => pipelines.push(p),
            Err(e) => errors.push(format!("{}: {e}", path.display())),
        }
    }
    (pipelines, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stage(id: &str, run: &str) -> serde_json::Value {
        json!({"id": id, "run": run})
    }

    impl Pipeline {
        fn from_json_t(v: serde_json::Value) -> Result<Pipeline, PipelineError> {
            Pipeline::from_json(v, 256)
        }
        fn from_toml_t(t: &str) -> Result<Pipeline, PipelineError> {
            Pipeline::from_toml(t, 256)
        }
    }

    #[test]
    fn too_many_stages_and_env_values_redacted() {
        let stages: Vec<_> = (0..4).map(|i| stage(&format!("s{i}"), "true")).collect();
        let e = Pipeline::from_json(json!({"name":"d","stages":stages}), 3).unwrap_err();
        assert_eq!(e.field, "stages");
        assert!(e.problem.contains("4 stages") && e.problem.contains("limit of 3"), "{e}");
        let p = Pipeline::from_json_t(json!({"name":"d","stages":[{"id":"a","run":"x","env":{"API_KEY":"hunter2"}}]})).unwrap();
        let shown = serde_json::to_string(&p.redacted()).unwrap();
        assert!(shown.contains("API_KEY") && !shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_good_pipeline() {
        let p = Pipeline::from_json_t(json!({"name":"demo","stages":[stage("a","echo a"), {"id":"b","run":"echo b","confirm":true,"timeout_s":5,"env":{"X":"1"}}]})).unwrap();
        assert_eq!(p.stages.len(), 2);
        assert!(p.stages[1].confirm);
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            (json!({"name":"d","stages":[]}), "stages"),
            (json!({"name":" ","stages":[stage("a","x")]}), "name"),
            (json!({"name":"d","stages":[stage("a","x"), stage("a","y")]}), "stages[1].id"),
            (json!({"name":"d","stages":[stage("a","  ")]}), "stages[0].run"),
            (json!({"name":"d","stages":[stage("a b","x")]}), "stages[0].id"),
            (json!({"name":"d","stages":[{"id":"a","run":"x","timeout_s":0}]}), "stages[0].timeout_s"),
            (json!({"name":"d","stages":[{"id":"a","run":"x","timeout_s":99999999}]}), "stages[0].timeout_s"),
            (json!({"name":"d","stages":[{"id":"a","run":"x","env":{"A=B":"1"}}]}), "stages[0].env"),
        ];
        for (value, field) in cases {
            let e = Pipeline::from_json_t(value.clone()).unwrap_err();
            assert_eq!(e.field, field, "{value}: {e}");
        }
        let e = Pipeline::from_json_t(json!({"name":"d","stages":[{"id":"a","run":"x","colour":"red"}]})).unwrap_err();
        assert!(e.problem.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn toml_errors_carry_the_line() {
        let text = "name = \"d\"\n\n[[stages]]\nid = \"a\"\nrun = 5\n";
        let e = Pipeline::from_toml(text, 256).unwrap_err();
        assert_eq!(e.field, "line 5", "{e}");
        let ok = Pipeline::from_toml_t("name = \"d\"\n[[stages]]\nid = \"a\"\nrun = \"echo hi\"\nconfirm = true\n").unwrap();
        assert!(ok.stages[0].confirm);
    }
}
