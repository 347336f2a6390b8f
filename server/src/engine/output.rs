//! The stage output protocol (in the spirit of GitHub Actions workflow commands): a
//! stdout line that starts with `::` and a known command becomes an event; every other
//! line is terminal output.
//!
//! `::progress 0.42 message` or `::progress 3/5 message`, `::metric loss=0.12 acc=0.9
//! step=10`, `::artifact path [image|file|export]`, `::notice|::warning|::error message`.

use app::protocol::{ArtifactKind, LogLevel};

#[derive(Debug, Clone, PartialEq)]
pub enum OutputLine {
    Progress { fraction: f64, message: Option<String> },
    /// Named values, and the `step` when one was given.
    Metrics { values: Vec<(String, f64)>, step: Option<u64> },
    Artifact { path: String, kind: ArtifactKind },
    Log { level: LogLevel, message: String },
    /// Not a command (or a malformed one): shown as terminal output.
    Text,
}

fn fraction(token: &str) -> Option<f64> {
    let value = match token.split_once('/') {
        Some((done, total)) => {
            let (done, total): (f64, f64) = (done.parse().ok()?, total.parse().ok()?);
            (total > 0.0).then(|| done / total)?
        }
        None => token.parse().ok()?,
    };
    value.is_finite().then(|| value.clamp(0.0, 1.0))
}

fn rest(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

pub fn parse_line(line: &str) -> OutputLine {
    let Some(command) = line.strip_prefix("::") else { return OutputLine::Text };
    let (name, args) = command.split_once(char::is_whitespace).unwrap_or((command, ""));
    let args = args.trim();
    match name {
        "progress" => {
            let (first, message) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
            match fraction(first) {
                Some(fraction) => OutputLine::Progress { fraction, message: rest(message) },
                None => OutputLine::Text,
            }
        }
        "metric" => {
            let mut values = Vec::new();
            let mut step = None;
            for pair in args.split_whitespace() {
                let Some((k, v)) = pair.split_once('=') else { return OutputLine::Text };
                if k == "step" {
                    step = Some(match v.parse() {
                        Ok(s) => s,
                        Err(_) => return OutputLine::Text,
                    });
                } else {
                    match v.parse::<f64>() {
                        Ok(x) if x.is_finite() && !k.is_empty() => values.push((k.to_owned(), x)),
                        _ => return OutputLine::Text,
                    }
                }
            }
            if values.is_empty() {
                OutputLine::Text
            } else {
                OutputLine::Metrics { values, step }
            }
        }
        "artifact" => {
            let mut parts = args.split_whitespace();
            let Some(path) = parts.next() else { return OutputLine::Text };
            let kind = match parts.next() {
                None | Some("file") => ArtifactKind::File,
                Some("image") => ArtifactKind::Image,
                Some("export") => ArtifactKind::Export,
                Some(_) => return OutputLine::Text,
            };
            OutputLine::Artifact { path: path.to_owned(), kind }
        }
        "notice" | "warning" | "error" => {
            let level = match name {
                "notice" => LogLevel::Notice,
                "warning" => LogLevel::Warning,
                _ => LogLevel::Error,
            };
            OutputLine::Log { level, message: args.to_owned() }
        }
        _ => OutputLine::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_as_fraction_or_ratio() {
        assert_eq!(parse_line("::progress 0.42 halfway"), OutputLine::Progress { fraction: 0.42, message: Some("halfway".into()) });
        assert_eq!(parse_line("::progress 3/4"), OutputLine::Progress { fraction: 0.75, message: None });
        assert_eq!(parse_line("::progress 7"), OutputLine::Progress { fraction: 1.0, message: None });
        assert_eq!(parse_line("::progress 1/0"), OutputLine::Text);
        assert_eq!(parse_line("::progress soon"), OutputLine::Text);
        assert_eq!(parse_line("::progress NaN"), OutputLine::Text);
    }

    #[test]
    fn metrics_with_step() {
        assert_eq!(
            parse_line("::metric loss=0.12 acc=0.9 step=10"),
            OutputLine::Metrics { values: vec![("loss".into(), 0.12), ("acc".into(), 0.9)], step: Some(10) }
        );
        assert_eq!(parse_line("::metric step=3"), OutputLine::Text);
        assert_eq!(parse_line("::metric loss=high"), OutputLine::Text);
    }

    #[test]
    fn artifacts_and_logs() {
        assert_eq!(parse_line("::artifact out/frame.png image"), OutputLine::Artifact { path: "out/frame.png".into(), kind: ArtifactKind::Image });
        assert_eq!(parse_line("::artifact model.bin"), OutputLine::Artifact { path: "model.bin".into(), kind: ArtifactKind::File });
        assert_eq!(parse_line("::artifact x.bin video"), OutputLine::Text);
        assert_eq!(parse_line("::warning disk is 90% full"), OutputLine::Log { level: LogLevel::Warning, message: "disk is 90% full".into() });
        assert_eq!(parse_line("::error"), OutputLine::Log { level: LogLevel::Error, message: String::new() });
    }

    #[test]
    fn everything_else_is_text() {
        for line in ["hello", "", ": not a command", "::unknown thing", "  ::progress 0.5"] {
            assert_eq!(parse_line(line), OutputLine::Text, "{line:?}");
        }
    }
}
