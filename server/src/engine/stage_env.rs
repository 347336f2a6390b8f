//! What a stage inherits of the server's environment: everything but the variables
//! the operator denies (`--stage-env-deny`, globs matched case-insensitively), and
//! never the signing secret or its file's path, whatever the list says.

use std::ffi::OsStr;
use std::sync::Arc;
use wildmatch::WildMatch;

/// Always withheld, even from a deny list that forgets them.
const ALWAYS: [&str; 2] = [crate::auth::secret::SECRET_ENV, "SWITCHBOARD_AUTH_SECRET_FILE"];

#[derive(Debug, Clone)]
pub struct EnvDeny {
    globs: Arc<[WildMatch]>,
}

impl EnvDeny {
    pub fn new(patterns: &[String]) -> EnvDeny {
        let globs = patterns
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .chain(ALWAYS)
            .map(WildMatch::new_case_insensitive)
            .collect();
        EnvDeny { globs }
    }

    pub fn denies(&self, name: &OsStr) -> bool {
        // a name that is not UTF-8 cannot be matched: withhold it
        name.to_str().is_none_or(|n| self.globs.iter().any(|g| g.matches(n)))
    }

    /// Removes from `cmd`'s environment every inherited variable this denies.
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        for (name, _) in std::env::vars_os() {
            if self.denies(&name) {
                cmd.env_remove(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_the_secret_are_withheld() {
        let deny = EnvDeny::new(&crate::config::STAGE_ENV_DENY_DEFAULT.split(',').map(String::from).collect::<Vec<_>>());
        for name in ["SWITCHBOARD_AUTH_SECRET", "SWITCHBOARD_AUTH_SECRET_FILE", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "db_password", "OPENAI_API_KEY"] {
            assert!(deny.denies(OsStr::new(name)), "{name}");
        }
        for name in ["PATH", "HOME", "LANG", "CUDA_VISIBLE_DEVICES", "PYTHONPATH"] {
            assert!(!deny.denies(OsStr::new(name)), "{name}");
        }
        let forgetful = EnvDeny::new(&[]);
        assert!(forgetful.denies(OsStr::new("SWITCHBOARD_AUTH_SECRET")) && !forgetful.denies(OsStr::new("SWITCHBOARD_LOG")));
    }
}
