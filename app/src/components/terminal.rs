//! The terminal view: ANSI-coloured output, stdout and stderr told apart, only the
//! lines in view (and a margin) in the DOM, auto-scroll that stops when the reader
//! scrolls up and resumes at the bottom, a filter, clear, and export to a .txt file.

use crate::client::browser;
use crate::model::ansi::Span;
use crate::model::terminal::{window_range, TermLine, TerminalBuffer, DEFAULT_MAX_LINES};
use crate::protocol::OutputStream;
use leptos::html;
use leptos::prelude::*;

/// Every line is this tall (the CSS says the same), so positions are arithmetic.
pub const LINE_HEIGHT: f64 = 18.0;
/// The same, in whole pixels, for the offsets written into styles.
const LINE_PX: usize = 18;
/// Lines drawn above and below the visible ones.
const MARGIN: usize = 40;
/// Viewport height assumed before it is measured.
const DEFAULT_VIEWPORT: f64 = 420.0;

/// The buffer and a counter that says it changed (the buffer itself is not reactive:
/// a hundred thousand lines are not signals).
#[derive(Clone, Copy)]
pub struct Terminal {
    pub buffer: StoredValue<TerminalBuffer>,
    pub version: RwSignal<u64>,
    /// A redraw is already asked for this frame.
    frame_pending: StoredValue<bool>,
}

impl Terminal {
    pub fn new() -> Self {
        Terminal {
            buffer: StoredValue::new(TerminalBuffer::new(DEFAULT_MAX_LINES)),
            version: RwSignal::new(0),
            frame_pending: StoredValue::new(false),
        }
    }

    /// Changes the buffer and redraws once per animation frame, however many batches
    /// arrive in it.
    pub fn update(&self, f: impl FnOnce(&mut TerminalBuffer)) {
        self.buffer.update_value(f);
        if self.frame_pending.get_value() {
            return;
        }
        self.frame_pending.set_value(true);
        let this = *self;
        let redraw = move || {
            this.frame_pending.set_value(false);
            this.version.update(|v| *v += 1);
        };
        #[cfg(feature = "hydrate")]
        request_animation_frame(redraw);
        #[cfg(not(feature = "hydrate"))]
        redraw();
    }
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::new()
    }
}

fn span_view(span: Span) -> AnyView {
    let classes = span.style.classes();
    let inline = span.style.inline();
    if classes.is_empty() && inline.is_empty() {
        return span.text.into_any();
    }
    view! { <span class=classes style=inline>{span.text}</span> }.into_any()
}

fn line_view(line: TermLine) -> impl IntoView {
    let class = match line.stream {
        OutputStream::Stdout => "term-line",
        OutputStream::Stderr => "term-line stderr",
        OutputStream::Info => "term-line info",
    };
    view! {
        <div class=class data-testid="term-line" title=line.stage.clone()>
            {line.spans.into_iter().map(span_view).collect_view()}
        </div>
    }
}

#[component]
pub fn TerminalView(terminal: Terminal, #[prop(into)] export_name: String) -> impl IntoView {
    let viewport: NodeRef<html::Div> = NodeRef::new();
    let scroll_top = RwSignal::new(0.0);
    let height = RwSignal::new(DEFAULT_VIEWPORT);
    let follow = RwSignal::new(true);
    let filter = RwSignal::new(String::new());
    let counts = Memo::new(move |_| {
        terminal.version.track();
        terminal.buffer.with_value(|b| (b.shown(), b.retained(), b.dropped()))
    });
    let window = Memo::new(move |_| {
        let total = counts.get().0;
        let (start, end) = window_range(scroll_top.get(), height.get(), LINE_HEIGHT, total, MARGIN);
        (start, terminal.buffer.with_value(|b| b.window(start, end)))
    });
    // follow the end: after each redraw, when following, scroll to the bottom
    Effect::new(move |_| {
        counts.track();
        if follow.get() {
            if let Some(el) = viewport.get() {
                el.set_scroll_top(el.scroll_height());
                scroll_top.set(el.scroll_top() as f64);
                height.set(el.client_height().max(1) as f64);
            }
        }
    });
    let on_scroll = move |_| {
        let Some(el) = viewport.get() else { return };
        let top = el.scroll_top() as f64;
        let h = el.client_height().max(1) as f64;
        scroll_top.set(top);
        height.set(h);
        // at the bottom (within a line): follow; anywhere above: the reader is reading
        follow.set(top + h >= el.scroll_height() as f64 - LINE_HEIGHT);
    };
    let on_filter = move |ev| {
        let f = event_target_value(&ev);
        filter.set(f.clone());
        terminal.update(|b| b.set_filter(&f));
    };
    let export = move |_| {
        let text = terminal.buffer.with_value(TerminalBuffer::export_text);
        browser::download_text(&export_name, &text);
    };
    let clear = move |_| terminal.update(TerminalBuffer::clear);
    let resume = move |_| follow.set(true);
    let summary = move || {
        let (shown, retained, _) = counts.get();
        if filter.with(String::is_empty) {
            format!("{retained} lines")
        } else {
            format!("{shown} of {retained} lines match")
        }
    };
    let dropped = move || {
        let d = counts.get().2;
        (d > 0).then(|| format!("{d} older lines were dropped: the last {DEFAULT_MAX_LINES} are kept"))
    };
    view! {
        <section class="terminal panel" aria-labelledby="terminal-heading">
            <div class="panel-head">
                <h2 id="terminal-heading">"Terminal"</h2>
                <div class="toolbar">
                    <input type="search" placeholder="Filter lines" aria-label="Filter lines" data-testid="term-filter"
                        prop:value=move || filter.get() on:input=on_filter/>
                    <button on:click=clear data-testid="term-clear">"Clear"</button>
                    <button on:click=export data-testid="term-export">"Export .txt"</button>
                    <Show when=move || !follow.get()>
                        <button on:click=resume data-testid="term-follow">"Follow"</button>
                    </Show>
                </div>
            </div>
            <p class="muted term-summary" data-testid="term-count">{summary}
                <span class="legend"><span class="swatch stdout"></span>"stdout"<span class="swatch stderr"></span>"stderr"</span>
            </p>
            <p class="notice" data-testid="term-dropped">{dropped}</p>
            <div class="term-viewport" node_ref=viewport on:scroll=on_scroll tabindex="0"
                role="log" aria-live="off" aria-label="Terminal output" data-testid="terminal"
                data-following=move || follow.get().to_string()>
                <div class="term-spacer" style=move || format!("height:{}px", counts.get().0 * LINE_PX)>
                    <div class="term-lines" style=move || format!("transform:translateY({}px)", window.with(|w| w.0) * LINE_PX)>
                        <For each=move || window.get().1 key=|l| l.id children=line_view/>
                    </div>
                </div>
            </div>
        </section>
    }
}
