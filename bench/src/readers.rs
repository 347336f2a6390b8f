//! The fan-out's subscribers: each reads its socket's events, checks their seqs and
//! records their latency; together they count deliveries, which paces the window
//! publisher without it spinning.

use crate::frames::{now_us, read_event};
use crate::scenario::Ws;
use futures::StreamExt;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Notify};
use tokio_tungstenite::tungstenite::Message;

/// What the readers and the publisher share.
pub struct Shared {
    pub delivered: AtomicU64,
    pub gaps: AtomicU64,
    stop: AtomicBool,
    /// Wakes readers that wait for a frame once `stop` is set.
    stopped: watch::Sender<bool>,
    /// The `delivered` count the window publisher sleeps until (u64::MAX: none).
    wake_at: AtomicU64,
    room: Notify,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            delivered: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            stopped: watch::channel(false).0,
            wake_at: AtomicU64::new(u64::MAX),
            room: Notify::new(),
        }
    }
}

impl Shared {
    /// Counts one delivery; wakes the window publisher once it has room.
    fn delivered_one(&self) {
        // SeqCst on both sides: the publisher stores wake_at then reads delivered
        let now = self.delivered.fetch_add(1, Ordering::SeqCst) + 1;
        if now >= self.wake_at.load(Ordering::SeqCst) {
            self.wake_at.store(u64::MAX, Ordering::SeqCst);
            self.room.notify_one();
        }
    }

    /// Sleeps until `delivered` reaches `target`, as load.js's pump does: the
    /// publisher spinning on yield_now took a core the readers needed.
    pub async fn until_delivered(&self, target: u64) {
        while self.delivered.load(Ordering::SeqCst) < target {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.wake_at.store(target, Ordering::SeqCst);
            if self.delivered.load(Ordering::SeqCst) >= target {
                self.wake_at.store(u64::MAX, Ordering::SeqCst);
                return;
            }
            notified.await;
        }
    }

    pub fn stop_readers(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.stopped.send_replace(true);
    }
}

/// Reads events until told to stop; returns its latency histogram (microseconds).
pub async fn read_events(mut ws: Ws, shared: Arc<Shared>) -> Histogram<u64> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let mut last_seq: Option<u64> = None;
    let mut stopped = shared.stopped.subscribe();
    loop {
        // no timer per frame: the stop signal wakes a reader that waits
        let msg = tokio::select! {
            biased;
            msg = ws.next() => match msg {
                Some(Ok(m)) => m,
                _ => break,
            },
            _ = stopped.wait_for(|s| *s) => break,
        };
        if let Message::Text(t) = msg {
            if let Some((seq, sent)) = read_event(t.as_str()) {
                let _ = hist.record(now_us().saturating_sub(sent).max(1));
                if let Some(prev) = last_seq {
                    if seq != prev + 1 {
                        shared.gaps.fetch_add(1, Ordering::Relaxed);
                    }
                }
                last_seq = Some(seq);
                shared.delivered_one();
            }
        }
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
    }
    let _ = ws.close(None).await;
    hist
}
