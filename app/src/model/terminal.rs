//! The terminal view's lines: parsed once as they arrive, capped (the oldest dropped
//! and counted), filterable, and cut into the window of lines the page draws. Plain
//! Rust, tested on the host.

use super::ansi::{plain, AnsiLines, Span};
use crate::protocol::OutputStream;
use std::collections::{HashMap, VecDeque};

/// Lines kept by default; older ones are dropped with a notice.
pub const DEFAULT_MAX_LINES: usize = 100_000;

#[derive(Debug, Clone, PartialEq)]
pub struct TermLine {
    /// Increasing, never reused: the key of the line's element.
    pub id: u64,
    pub stage: String,
    pub stream: OutputStream,
    pub spans: Vec<Span>,
    pub text: String,
}

pub struct TerminalBuffer {
    lines: VecDeque<TermLine>,
    max: usize,
    next_id: u64,
    dropped: u64,
    parsers: HashMap<(String, OutputStream), AnsiLines>,
    filter: String,
    /// Ids of the lines matching `filter` (when there is one), oldest first.
    matches: VecDeque<u64>,
}

impl Default for TerminalBuffer {
    fn default() -> Self {
        TerminalBuffer::new(DEFAULT_MAX_LINES)
    }
}

impl TerminalBuffer {
    pub fn new(max: usize) -> Self {
        TerminalBuffer {
            lines: VecDeque::new(),
            max: max.max(1),
            next_id: 0,
            dropped: 0,
            parsers: HashMap::new(),
            filter: String::new(),
            matches: VecDeque::new(),
        }
    }

    /// Adds a `terminal_output` batch: one line per newline-ended piece.
    pub fn push_output(&mut self, stage: &str, stream: OutputStream, output: &str) {
        let parser = self.parsers.entry((stage.to_owned(), stream)).or_default();
        let mut parsed = Vec::new();
        for raw in output.split_terminator('\n') {
            let spans = parser.line(raw.strip_suffix('\r').unwrap_or(raw));
            parsed.push(spans);
        }
        for spans in parsed {
            self.push_line(stage, stream, spans);
        }
    }

    fn push_line(&mut self, stage: &str, stream: OutputStream, spans: Vec<Span>) {
        let text = plain(&spans);
        let id = self.next_id;
        self.next_id += 1;
        if !self.filter.is_empty() && matches(&text, &self.filter) {
            self.matches.push_back(id);
        }
        self.lines.push_back(TermLine { id, stage: stage.to_owned(), stream, spans, text });
        while self.lines.len() > self.max {
            self.lines.pop_front();
            self.dropped += 1;
        }
        let first = self.first_id();
        while self.matches.front().is_some_and(|m| *m < first) {
            self.matches.pop_front();
        }
    }

    fn first_id(&self) -> u64 {
        self.lines.front().map_or(self.next_id, |l| l.id)
    }

    /// Forgets every line (the count of dropped ones too); styles start over.
    pub fn clear(&mut self) {
        self.lines.clear();
        self.matches.clear();
        self.parsers.clear();
        self.dropped = 0;
    }

    pub fn set_filter(&mut self, filter: &str) {
        self.filter = filter.trim().to_ascii_lowercase();
        self.matches = if self.filter.is_empty() {
            VecDeque::new()
        } else {
            self.lines.iter().filter(|l| matches(&l.text, &self.filter)).map(|l| l.id).collect()
        };
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// Lines retained (all of them, whatever the filter).
    pub fn retained(&self) -> usize {
        self.lines.len()
    }

    /// Lines shown: the matches when filtering, else all retained.
    pub fn shown(&self) -> usize {
        if self.filter.is_empty() {
            self.lines.len()
        } else {
            self.matches.len()
        }
    }

    /// Lines dropped from the front to stay within the cap.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Shown lines `start..end` (clamped).
    pub fn window(&self, start: usize, end: usize) -> Vec<TermLine> {
        let end = end.min(self.shown());
        let start = start.min(end);
        if self.filter.is_empty() {
            self.lines.range(start..end).cloned().collect()
        } else {
            let first = self.first_id();
            self.matches
                .range(start..end)
                .filter_map(|id| self.lines.get((id - first) as usize))
                .cloned()
                .collect()
        }
    }

    /// Every retained line as plain text, one per line (the export).
    pub fn export_text(&self) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.text.len() + 1).sum());
        for l in &self.lines {
            out.push_str(&l.text);
            out.push('\n');
        }
        out
    }
}

/// Case-insensitive for ASCII letters (`filter` is already lower-case): no Unicode
/// case tables in the bundle for a search box.
fn matches(text: &str, filter: &str) -> bool {
    let (t, f) = (text.as_bytes(), filter.as_bytes());
    f.is_empty() || t.windows(f.len()).any(|w| w.iter().zip(f).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// The shown lines to draw for a viewport: those visible and `margin` more on each
/// side, as `start..end`.
pub fn window_range(scroll_top: f64, viewport: f64, line_height: f64, total: usize, margin: usize) -> (usize, usize) {
    if total == 0 || line_height <= 0.0 {
        return (0, 0);
    }
    let first = (scroll_top.max(0.0) / line_height).floor() as usize;
    let visible = (viewport.max(0.0) / line_height).ceil() as usize + 1;
    let start = first.saturating_sub(margin).min(total);
    let end = (first + visible + margin).min(total);
    (start.min(end), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(max: usize, lines: usize) -> TerminalBuffer {
        let mut b = TerminalBuffer::new(max);
        let text: String = (0..lines).map(|i| format!("line {i}\n")).collect();
        b.push_output("s", OutputStream::Stdout, &text);
        b
    }

    #[test]
    fn batches_split_into_lines_with_styles() {
        let mut b = TerminalBuffer::default();
        b.push_output("train", OutputStream::Stdout, "\x1b[32mok\x1b[0m\nplain\r\n");
        b.push_output("train", OutputStream::Stderr, "oops\n");
        let w = b.window(0, 10);
        assert_eq!(w.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["ok", "plain", "oops"]);
        assert_eq!(w[0].spans[0].style.classes(), "fg2");
        assert_eq!(w[2].stream, OutputStream::Stderr);
    }

    #[test]
    fn the_cap_drops_the_oldest_and_counts_them() {
        let b = buffer(100, 250);
        assert_eq!(b.retained(), 100);
        assert_eq!(b.dropped(), 150);
        assert_eq!(b.window(0, 1)[0].text, "line 150");
        assert!(b.export_text().starts_with("line 150\n") && b.export_text().ends_with("line 249\n"));
    }

    #[test]
    fn the_filter_shows_matches_and_follows_new_lines_and_drops() {
        let mut b = buffer(50, 40);
        b.set_filter("LINE 3");
        assert_eq!(b.shown(), 11, "line 3 and line 30..39");
        b.push_output("s", OutputStream::Stdout, "line 300\nother\n");
        assert_eq!(b.shown(), 12);
        b.push_output("s", OutputStream::Stdout, &"x\n".repeat(45));
        assert_eq!(b.window(0, 5).iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["line 37", "line 38", "line 39", "line 300"]);
        b.set_filter("");
        assert_eq!(b.shown(), 50);
    }

    #[test]
    fn clear_forgets_everything_but_keeps_ids_unique() {
        let mut b = buffer(10, 5);
        let last = b.window(4, 5)[0].id;
        b.clear();
        assert_eq!((b.shown(), b.dropped()), (0, 0));
        b.push_output("s", OutputStream::Stdout, "new\n");
        assert!(b.window(0, 1)[0].id > last);
    }

    #[test]
    fn the_window_covers_the_viewport_and_a_margin() {
        assert_eq!(window_range(0.0, 180.0, 18.0, 1000, 20), (0, 31));
        assert_eq!(window_range(1800.0, 180.0, 18.0, 1000, 20), (80, 131));
        assert_eq!(window_range(17900.0, 180.0, 18.0, 1000, 20), (974, 1000));
        assert_eq!(window_range(0.0, 180.0, 18.0, 0, 20), (0, 0));
        let (s, e) = window_range(5e9, 900.0, 18.0, 100_000, 50);
        assert!(s <= e && e == 100_000);
    }
}
