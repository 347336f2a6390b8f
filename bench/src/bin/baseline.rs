//! The baseline: the smallest sensible broadcast server, for the load generator to
//! measure the hub against in the same run. One implicit topic, a seq, `/ws` and
//! `POST /api/v1/publish`, a `tokio::sync::broadcast` channel; no history, limits,
//! heartbeats or validation. Same 4 KiB socket read buffer as the hub.

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Clone)]
struct Baseline {
    tx: broadcast::Sender<Utf8Bytes>,
    seq: Arc<AtomicU64>,
}

impl Baseline {
    fn publish(&self, topic: &str, event: &str, data: &serde_json::Value) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        let frame = serde_json::json!({"v":1,"type":"event","topic":topic,"seq":seq,"ts":0,"event":event,"data":data});
        let _ = self.tx.send(Utf8Bytes::from(frame.to_string()));
        seq
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args().nth(1).map(|p| p.parse()).transpose()?.unwrap_or(3100);
    let (tx, _) = broadcast::channel(65_536);
    let state = Baseline { tx, seq: Arc::new(AtomicU64::new(0)) };
    let app = Router::new().route("/ws", get(ws)).route("/api/v1/publish", post(publish)).with_state(state);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("baseline listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn publish(State(b): State<Baseline>, Json(body): Json<serde_json::Value>) -> Json<serde_json::Value> {
    let topic = body["topic"].as_str().unwrap_or("t");
    let seq = b.publish(topic, body["event"].as_str().unwrap_or("e"), &body["data"]);
    Json(serde_json::json!({"topic": topic, "seq": seq}))
}

async fn ws(State(b): State<Baseline>, up: WebSocketUpgrade) -> axum::response::Response {
    up.read_buffer_size(4 * 1024).on_upgrade(move |socket| serve(socket, b))
}

async fn serve(socket: WebSocket, b: Baseline) {
    let (mut sink, mut stream) = socket.split();
    let mut rx = b.tx.subscribe();
    let writer = tokio::spawn(async move {
        // a lagged receiver has lost events: end the connection rather than skip
        while let Ok(frame) = rx.recv().await {
            if sink.send(Message::Text(frame)).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        if let Message::Text(t) = msg {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(t.as_str()) {
                if v["type"] == "publish" {
                    b.publish(v["topic"].as_str().unwrap_or("t"), v["event"].as_str().unwrap_or("e"), &v["data"]);
                }
            }
        }
    }
    writer.abort();
}
