//! Terminal output with ANSI escapes through the dashboard's terminal model
//! (app/src/model/terminal.rs `TerminalBuffer`, which parses each line with
//! app/src/model/ansi.rs `AnsiLines`, alacritty's `vte` underneath): the lines, their
//! styles as CSS, the filter, the window and the export.
#![no_main]

use app::model::terminal::TerminalBuffer;
use app::protocol::OutputStream;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    // a small cap, so that dropping the oldest lines is exercised too
    let mut buffer = TerminalBuffer::new(usize::from(first % 16) + 1);
    // two batches of one stream (the style carries over), then one of another stream
    let mut mid = text.len() / 2;
    while !text.is_char_boundary(mid) {
        mid -= 1;
    }
    let (a, b) = text.split_at(mid);
    buffer.push_output("build", OutputStream::Stdout, a);
    buffer.push_output("build", OutputStream::Stdout, b);
    buffer.push_output("build", OutputStream::Stderr, &text);
    for line in buffer.window(0, usize::MAX) {
        for span in &line.spans {
            let _ = (span.style.classes(), span.style.inline());
        }
    }
    // a filter taken from the text itself, so it matches now and then
    let filter: String = text.chars().take(usize::from(first >> 4)).collect();
    buffer.set_filter(&filter);
    let shown = buffer.window(0, usize::MAX).len();
    assert_eq!(shown, buffer.shown(), "the window of everything has every shown line");
    assert!(shown <= buffer.retained());
    let _ = buffer.export_text();
});
