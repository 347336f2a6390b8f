//! ANSI SGR colours and attributes (16, 256 and 24-bit colours, bold, dim, italic,
//! underline, inverse) turned into styled spans, with alacritty's `vte` parser. The
//! style carries over from line to line, as in a terminal; every other escape
//! sequence is dropped, and a carriage return starts the line over (progress bars).

use vte::{Params, Parser, Perform};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Color {
    #[default]
    Default,
    /// 0-15: the theme's palette (CSS classes); 16-255: the xterm cube and greys.
    Indexed(u8),
    Rgb(u8, u8, u8),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Style {
    pub fg: Color,
    pub bg: Color,
    pub bold: bool,
    pub dim: bool,
    pub italic: bool,
    pub underline: bool,
    pub inverse: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub text: String,
    pub style: Style,
}

/// The RGB of an xterm 256-colour index above 15.
pub fn xterm_rgb(index: u8) -> (u8, u8, u8) {
    match index {
        16..=231 => {
            let i = index - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        232..=255 => {
            let v = 8 + (index - 232) * 10;
            (v, v, v)
        }
        // the 16 theme colours have no fixed RGB; a neutral grey if asked
        _ => (128, 128, 128),
    }
}

impl Style {
    /// CSS classes: the theme's 16 colours and the attributes.
    pub fn classes(&self) -> String {
        let (fg, bg) = if self.inverse { (self.bg, self.fg) } else { (self.fg, self.bg) };
        let mut c = Vec::new();
        if let Color::Indexed(i @ 0..=15) = fg {
            c.push(format!("fg{i}"));
        }
        if let Color::Indexed(i @ 0..=15) = bg {
            c.push(format!("bg{i}"));
        }
        if self.inverse && fg == Color::Default {
            c.push("fg-inverse".into());
        }
        if self.inverse && bg == Color::Default {
            c.push("bg-inverse".into());
        }
        for (on, name) in [(self.bold, "b"), (self.dim, "dim"), (self.italic, "i"), (self.underline, "u")] {
            if on {
                c.push(name.into());
            }
        }
        c.join(" ")
    }

    /// Inline CSS for colours outside the theme's 16.
    pub fn inline(&self) -> String {
        let (fg, bg) = if self.inverse { (self.bg, self.fg) } else { (self.fg, self.bg) };
        let rgb = |c: Color| match c {
            Color::Rgb(r, g, b) => Some((r, g, b)),
            Color::Indexed(i) if i > 15 => Some(xterm_rgb(i)),
            _ => None,
        };
        let mut s = String::new();
        if let Some((r, g, b)) = rgb(fg) {
            s.push_str(&format!("color:rgb({r},{g},{b});"));
        }
        if let Some((r, g, b)) = rgb(bg) {
            s.push_str(&format!("background:rgb({r},{g},{b});"));
        }
        s
    }

    fn apply_sgr(&mut self, params: &Params) {
        let flat: Vec<Vec<u16>> = params.iter().map(|p| p.to_vec()).collect();
        if flat.is_empty() {
            *self = Style::default();
            return;
        }
        let mut i = 0;
        while i < flat.len() {
            let p = &flat[i];
            let code = p.first().copied().unwrap_or(0);
            match code {
                0 => *self = Style::default(),
                1 => self.bold = true,
                2 => self.dim = true,
                3 => self.italic = true,
                4 => self.underline = true,
                7 => self.inverse = true,
                21 | 22 => {
                    self.bold = false;
                    self.dim = false;
                }
                23 => self.italic = false,
                24 => self.underline = false,
                27 => self.inverse = false,
                30..=37 => self.fg = Color::Indexed((code - 30) as u8),
                39 => self.fg = Color::Default,
                40..=47 => self.bg = Color::Indexed((code - 40) as u8),
                49 => self.bg = Color::Default,
                90..=97 => self.fg = Color::Indexed((code - 90 + 8) as u8),
                100..=107 => self.bg = Color::Indexed((code - 100 + 8) as u8),
                38 | 48 => {
                    // `38:5:n` / `38:2:r:g:b` (sub-parameters) or `38;5;n` / `38;2;r;g;b`
                    let (color, used) = if p.len() > 1 {
                        // ITU form `38:2:<colour space>:r:g:b` carries one more field
                        let args: Vec<u16> = match p.as_slice() {
                            [_, 2, _, r, g, b, ..] => vec![2, *r, *g, *b],
                            _ => p[1..].to_vec(),
                        };
                        (extended(&args), 0)
                    } else {
                        let rest: Vec<u16> = flat[i + 1..].iter().filter_map(|q| q.first().copied()).collect();
                        let used = match rest.first() {
                            Some(5) => 2,
                            Some(2) => 4,
                            _ => 0,
                        };
                        (extended(&rest), used.min(rest.len()))
                    };
                    if let Some(color) = color {
                        if code == 38 {
                            self.fg = color;
                        } else {
                            self.bg = color;
                        }
                    }
                    i += used;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// `5;n` or `2;r;g;b` after a 38/48.
fn extended(args: &[u16]) -> Option<Color> {
    let byte = |v: &u16| u8::try_from(*v).ok();
    match args {
        [5, n, ..] => byte(n).map(Color::Indexed),
        [2, r, g, b, ..] => Some(Color::Rgb(byte(r)?, byte(g)?, byte(b)?)),
        _ => None,
    }
}

/// Collects one line's spans.
#[derive(Default)]
struct Collector {
    style: Style,
    spans: Vec<Span>,
    text: String,
}

impl Collector {
    fn cut(&mut self) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            match self.spans.last_mut() {
                Some(last) if last.style == self.style => last.text.push_str(&text),
                _ => self.spans.push(Span { text, style: self.style }),
            }
        }
    }
}

impl Perform for Collector {
    fn print(&mut self, c: char) {
        self.text.push(c);
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\t' => self.text.push('\t'),
            b'\r' => {
                self.text.clear();
                self.spans.clear();
            }
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, _intermediates: &[u8], _ignore: bool, action: char) {
        if action == 'm' {
            self.cut();
            self.style.apply_sgr(params);
        }
    }
}

/// One stream's parser: the style carries over between lines and batches.
#[derive(Default)]
pub struct AnsiLines {
    parser: Parser,
    collector: Collector,
}

impl AnsiLines {
    /// The styled spans of one line (without its newline).
    pub fn line(&mut self, text: &str) -> Vec<Span> {
        self.parser.advance(&mut self.collector, text.as_bytes());
        self.collector.cut();
        std::mem::take(&mut self.collector.spans)
    }
}

/// The text of spans, without styles (for filtering and export).
pub fn plain(spans: &[Span]) -> String {
    spans.iter().map(|s| s.text.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Vec<Vec<Span>> {
        let mut p = AnsiLines::default();
        lines.iter().map(|l| p.line(l)).collect()
    }

    #[test]
    fn sixteen_colours_bold_and_reset() {
        let out = parse(&["\x1b[1mepoch 1\x1b[0m loss=\x1b[33m0.5\x1b[0m"]);
        let spans = &out[0];
        assert_eq!(plain(spans), "epoch 1 loss=0.5");
        assert_eq!(spans[0].style, Style { bold: true, ..Style::default() });
        assert_eq!(spans[1].style, Style::default());
        assert_eq!(spans[2].style.fg, Color::Indexed(3));
        assert_eq!(spans[2].style.classes(), "fg3");
        assert_eq!(parse(&["\x1b[91mhi"])[0][0].style.fg, Color::Indexed(9));
    }

    #[test]
    fn two_fifty_six_and_true_colour_in_both_syntaxes() {
        let out = parse(&["\x1b[38;5;196ma\x1b[48;2;10;20;30mb\x1b[38:2::1:2:3mc\x1b[38:5:240md"]);
        let s = &out[0];
        assert_eq!(s[0].style.fg, Color::Indexed(196));
        assert_eq!(s[0].style.inline(), "color:rgb(255,0,0);");
        assert_eq!(s[1].style.bg, Color::Rgb(10, 20, 30));
        assert_eq!(s[2].style.fg, Color::Rgb(1, 2, 3));
        assert_eq!(s[3].style.fg, Color::Indexed(240));
        assert_eq!(xterm_rgb(232), (8, 8, 8));
        assert_eq!(xterm_rgb(16), (0, 0, 0));
    }

    #[test]
    fn colon_true_colour_with_a_colour_space_id() {
        // `38:2::r:g:b` carries an empty colour-space id: vte reads it as 0
        let s = &parse(&["\x1b[38:2:1:2:3mx"])[0];
        assert_eq!(s[0].style.fg, Color::Rgb(1, 2, 3));
    }

    #[test]
    fn style_carries_over_lines_and_other_escapes_vanish() {
        let out = parse(&["\x1b[4;32mgreen", "still green\x1b[24m", "\x1b[2K\x1b[1Gcleared"]);
        assert_eq!(out[1][0].style, Style { fg: Color::Indexed(2), underline: true, ..Style::default() });
        assert_eq!(out[2][0].text, "cleared");
        assert!(!out[2][0].style.underline);
    }

    #[test]
    fn carriage_return_starts_over_and_inverse_swaps() {
        let out = parse(&["[#   ] 25%\r[### ] 75%", "\x1b[7;31mwarn"]);
        assert_eq!(plain(&out[0]), "[### ] 75%");
        assert_eq!(out[1][0].style.classes(), "bg1 fg-inverse");
    }

    #[test]
    fn malformed_sequences_never_panic() {
        let out = parse(&["\x1b[38;5mx", "\x1b[38;2;300;1;1my", "\x1b[999999mz", "\x1b[", "é\x1b[0"]);
        assert_eq!(plain(&out[0]), "x");
        assert_eq!(plain(&out[2]), "z");
    }
}
