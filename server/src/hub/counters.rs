//! The hub's counters, kept as Prometheus metrics (exported at `GET /metrics`) and read
//! back for `GET /api/v1/stats`. Labels are bounded: error codes only, never topics.

use app::protocol::ErrorCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    pub code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabel {
    pub code: u16,
}

pub struct Counters {
    pub connections_total: Counter,
    pub connections_active: Gauge,
    pub messages_in: Counter,
    pub messages_out: Counter,
    pub events_published: Counter,
    pub slow_consumer_closes: Counter,
    /// Events dropped from non-durable histories because their memory budget was spent.
    pub history_evictions: Counter,
    /// Chat lines not written to a stage's stdin because it was not reading.
    pub chat_dropped: Counter,
    /// HTTP connections refused because their address already held its limit.
    pub connections_refused: Counter,
    pub rejected: Family<CodeLabel, Counter>,
    pub closes: Family<CloseLabel, Counter>,
    /// Seconds from publish to the write of the frame to the socket (oldest of a batch).
    pub delivery_latency: Histogram,
    /// The job engine's cost to start a stage: from taking it off the queue to spawn.
    pub stage_start_latency: Histogram,
    registry: Registry,
}

impl Default for Counters {
    fn default() -> Self {
        let mut c = Counters {
            connections_total: Counter::default(),
            connections_active: Gauge::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            events_published: Counter::default(),
            slow_consumer_closes: Counter::default(),
            history_evictions: Counter::default(),
            chat_dropped: Counter::default(),
            connections_refused: Counter::default(),
            rejected: Family::default(),
            closes: Family::default(),
            // 50 µs .. ~1.6 s
            delivery_latency: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            // 100 µs .. ~1.1 s in steps of 1.5x: fine enough to read a p99 against 10 ms
            stage_start_latency: Histogram::new(exponential_buckets(0.000_1, 1.5, 24)),
            registry: Registry::with_prefix("switchboard"),
        };
        let r = &mut c.registry;
        r.register("connections", "WebSocket connections accepted since start", c.connections_total.clone());
        r.register("active_connections", "WebSocket connections open now", c.connections_active.clone());
        r.register("messages_in", "Client messages received", c.messages_in.clone());
        r.register("messages_out", "Frames sent to clients", c.messages_out.clone());
        r.register("events_published", "Events published on any topic", c.events_published.clone());
        r.register(
            "slow_consumer_closes",
            "Connections closed with 1013 because their outbound queue overflowed",
            c.slow_consumer_closes.clone(),
        );
        r.register(
            "history_evictions",
            "Events evicted from non-durable histories to keep them within --history-memory-bytes",
            c.history_evictions.clone(),
        );
        r.register("chat_dropped", "Chat lines dropped because the stage was not reading its stdin", c.chat_dropped.clone());
        r.register(
            "connections_refused",
            "TCP connections refused because their address held --max-connections-per-ip",
            c.connections_refused.clone(),
        );
        r.register("rejected_messages", "Client messages answered with an error, by code", c.rejected.clone());
        r.register("closes", "Connections closed by the server, by close code", c.closes.clone());
        r.register(
            "delivery_latency_seconds",
            "Time from publish to the socket write of an event",
            c.delivery_latency.clone(),
        );
        r.register(
            "stage_start_seconds",
            "Time from taking a stage off the queue to its process being spawned",
            c.stage_start_latency.clone(),
        );
        for code in ErrorCode::ALL {
            // every code present from the start, at 0, so dashboards see the series
            let _ = c.rejected.get_or_create(&CodeLabel { code: code.as_str() });
        }
        c
    }
}

impl Counters {
    pub fn reject(&self, code: ErrorCode) {
        self.rejected.get_or_create(&CodeLabel { code: code.as_str() }).inc();
    }

    pub fn closed(&self, code: u16) {
        self.closes.get_or_create(&CloseLabel { code }).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self, extra: impl FnOnce(&mut String)) -> String {
        let mut out = String::new();
        extra(&mut out);
        // writing into a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
