//! The payload the publisher sends and how a subscriber reads it back cheaply: the
//! data carries the send time in microseconds, the frame carries the seq. Scanning
//! for two numbers keeps the load generator's own cost far below the server's.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// `{"t":<now_us>,"pad":"xxx…"}` of about `size` bytes.
pub fn payload(size: usize) -> serde_json::Value {
    let pad = size.saturating_sub(30);
    serde_json::json!({"t": now_us(), "pad": "x".repeat(pad)})
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: &str = &text[start..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// (seq, sent_us) of an event frame; None for any other message.
pub fn read_event(text: &str) -> Option<(u64, u64)> {
    if !text.contains(r#""type":"event""#) {
        return None;
    }
    Some((number_after(text, r#""seq":"#)?, number_after(text, r#""t":"#)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_seq_and_time() {
        let f = r#"{"v":1,"type":"event","topic":"b","seq":42,"ts":1,"event":"e","data":{"t":123456,"pad":"xx"}}"#;
        assert_eq!(read_event(f), Some((42, 123456)));
        assert_eq!(read_event(r#"{"type":"hello"}"#), None);
    }
}
