//! A closed client learns why: one that floods is closed for abuse (1008, after 50
//! `rate_limited`), and still receives every error queued before the close and the
//! close frame itself, although it keeps sending (RFC 6455's closing handshake).

use crate::common::{start_server_with, Client, Closed};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn a_flooding_client_gets_its_errors_then_the_close_frame() {
    let server = start_server_with(|_| {}).await;
    let mut c = Client::connect(&server.ws_url("/ws")).await;
    c.expect_type("hello").await;
    let (mut sink, mut stream) = c.ws.split();
    // 150 pings at once, then more every few milliseconds, never stopping to read
    let sender = tokio::spawn(async move {
        for _ in 0..150 {
            if sink.feed(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                return;
            }
        }
        let _ = sink.flush().await;
        for _ in 0..2_000 {
            if sink.send(Message::text(r#"{"type":"ping"}"#)).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let (mut pongs, mut limited) = (0, 0);
    let ended = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("the server answers");
        match next {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                match v["type"].as_str() {
                    Some("pong") => pongs += 1,
                    Some("error") if v["code"] == "rate_limited" => limited += 1,
                    other => panic!("unexpected {other:?}: {v}"),
                }
            }
            Some(Ok(Message::Close(Some(f)))) => break Closed::Code(u16::from(f.code), f.reason.to_string()),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => break Closed::NoFrame,
        }
    };
    sender.abort();
    assert_eq!(ended, Closed::Code(1008, "rate limit exceeded repeatedly".into()), "after {pongs} pongs, {limited} errors");
    assert!((20..=22).contains(&pongs), "the burst was answered: {pongs}");
    assert_eq!(limited, 50, "every rate_limited error queued before the close arrived");
    server.stop().await;
}
