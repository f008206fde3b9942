//! Sinks beside the JSONL log: consumers of the same telemetry records (the OTLP exporter, the
//! alerts) that each run on their own background thread. The engine builds every record once,
//! shares it (`Arc`) with the log writer and every sink, and never waits on any of them.

use std::sync::Arc;
use std::time::Duration;

use super::event::TelemetryRecord;

/// How long `Engine::close` and `Engine::flush_telemetry` (and a sink dropped unclosed) wait
/// for each sink beside the log (OTLP exporter, alerts) to hand on what it holds: 5 s, so an
/// unreachable collector cannot hang a process's exit.
pub const SINK_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A consumer of telemetry records. Every method runs on a caller's thread, so `accept` must
/// only queue (a bounded queue, counting what it drops) and return in well under a
/// microsecond; the work happens on the sink's own thread.
pub trait RecordSink: Send + Sync {
    /// Takes one record, in the order the engine made them.
    fn accept(&self, record: &Arc<TelemetryRecord>);

    /// Delivers everything accepted so far, waiting at most `timeout`; true when all of it was
    /// handed on (sent, or given up on and counted) in time.
    fn flush(&self, timeout: Duration) -> bool;

    /// Flushes (at most `timeout`) and stops the sink's thread; later records are ignored.
    fn close(&self, timeout: Duration);

    /// Call in a child after `fork()`: the parent's thread does not exist in the child, so the
    /// sink starts its own (and drops inherited connections).
    fn after_fork(&self);
}
