//! The streamed call: the same walk as `complete()` (budgets, breakers, rate limits, retries,
//! failover, the deadline), each attempt opening a provider stream and handing its text deltas
//! to the caller as they arrive.
//!
//! The line that matters is the first delta handed to the caller. Before it, every failure
//! (the stream could not open, no token within the first-token limit, an `error` event, an
//! early end) is an ordinary attempt failure and follows `complete()`'s policy. After it, a cut,
//! a stall, an `error` event or a stream without its terminal event ends the call as
//! `stream_incomplete` with the text received (or, when the settings allow it, restarts on the
//! next model after telling the caller the text so far is void). The caller stopping (the
//! callback returning `Stop`, or the cancel token in scope) ends it as `cancelled` at once: the
//! stream is dropped, which closes its connection.
//!
//! A stream that ended well is judged like a `complete()` answer: its text is the deltas the
//! caller saw. When it is invalid and the walk goes on (a repair on the same model, or the next
//! model), the caller is sent [`StreamEvent::Restart`] with the reason `invalid output: ...`
//! before the next attempt streams, whatever `restart_on_incomplete` says: the deltas it holds
//! are void either way, and the next answer streams from its start. A callback returning `Stop`
//! at that restart ends the call with the invalid answer (`invalid_output`).

use std::sync::Arc;
use std::time::Instant;

use super::attempts::{BrokenStats, Perform, Performed};
use super::{Failure, Start, perform_call};
use crate::client::cancel;
use crate::client::clock::Clock;
use crate::client::outcome::{Answer, StreamStats};
use crate::client::request::CallRequest;
use crate::client::runtime::{ClientOptions, ClientRuntime, ProviderRuntime};
use crate::client::socket::with_deadline;
use crate::client::stream::{StreamChunk, StreamControl, StreamEvent, StreamTimeouts};
use crate::client::table::ProviderTable;
use crate::client::types::{AttemptError, FailureKind, ProviderRequest};

/// How a streamed call treats silence and breaks (`providers.json` → `client.stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StreamSettings {
    /// The first-token and stall limits.
    pub timeouts: StreamTimeouts,
    /// Restart on the next model when a started stream breaks.
    pub restart_on_incomplete: bool,
}

impl StreamSettings {
    /// The settings of `providers.json` → `client.stream`.
    pub(crate) fn of(settings: &crate::config::StreamClientSettings) -> StreamSettings {
        StreamSettings {
            timeouts: StreamTimeouts {
                first_token: std::time::Duration::from_millis(settings.first_token_timeout_ms),
                stall: std::time::Duration::from_millis(settings.stall_timeout_ms),
            },
            restart_on_incomplete: settings.restart_on_incomplete,
        }
    }
}

/// Runs one streamed call, handing deltas (and restarts) to `on_event`; the engine attaches the
/// resolution to the answer.
pub(crate) fn stream(
    runtime: &ClientRuntime,
    providers: &ProviderTable,
    options: &ClientOptions,
    request: &CallRequest<'_>,
    settings: StreamSettings,
    on_event: &mut dyn FnMut(StreamEvent<'_>) -> StreamControl,
) -> Result<Answer, Failure> {
    let start = Start {
        at: options.clock.now(),
        utc: options.clock.utc_now(),
    };
    let mut streamer = Streamer {
        settings,
        clock: Arc::clone(&options.clock),
        call_started: start.at,
        // Sockets wait in real time, whatever the clock of the walk.
        deadline: Instant::now() + request.deadline,
        on_event,
    };
    perform_call(runtime, providers, options, request, start, &mut streamer)
}

/// The streamed attempt: open, read, hand deltas over.
struct Streamer<'f> {
    settings: StreamSettings,
    clock: Arc<dyn Clock>,
    /// The call's start: the answer's time to first token counts from it.
    call_started: Instant,
    /// The call's deadline in real time: it bounds every read of a started stream too (the
    /// stall limit alone would let a steady stream run past it).
    deadline: Instant,
    on_event: &'f mut dyn FnMut(StreamEvent<'_>) -> StreamControl,
}

fn milliseconds(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

impl Perform for Streamer<'_> {
    fn perform(&mut self, provider: &ProviderRuntime, request: &ProviderRequest<'_>) -> Performed {
        let opened = self.clock.now();
        let mut stream = match provider.provider.stream(request, self.settings.timeouts) {
            Ok(stream) => stream,
            Err(error) => return Performed::Failed(error),
        };
        let mut text = String::new();
        let mut chunks = 0u64;
        // The first delta's arrival, from the attempt's start and from the call's.
        let mut first: Option<(f64, f64)> = None;
        let stats = |first: Option<(f64, f64)>, chunks| BrokenStats {
            attempt: StreamStats {
                time_to_first_token_ms: first.map_or(0.0, |(attempt, _)| attempt),
                chunks,
            },
            call: StreamStats {
                time_to_first_token_ms: first.map_or(0.0, |(_, call)| call),
                chunks,
            },
        };
        loop {
            let chunk = if cancel::is_cancelled() {
                Err(cancelled("cancelled by the caller"))
            } else {
                with_deadline(Some(self.deadline), || stream.next_chunk())
            };
            match chunk {
                Ok(StreamChunk::Delta(delta)) => {
                    if delta.is_empty() {
                        continue;
                    }
                    if first.is_none() {
                        let now = self.clock.now();
                        first = Some((
                            milliseconds(opened, now),
                            milliseconds(self.call_started, now),
                        ));
                    }
                    chunks += 1;
                    text.push_str(&delta);
                    if (self.on_event)(StreamEvent::Delta(&delta)) == StreamControl::Stop {
                        // Dropping the stream closes the connection before the walk goes on.
                        drop(stream);
                        return Performed::Broken {
                            error: cancelled("stopped by the callback"),
                            stats: stats(first, chunks),
                            partial: text,
                        };
                    }
                }
                Ok(StreamChunk::ToolCallDelta {
                    index,
                    id,
                    name,
                    arguments,
                }) => {
                    // A piece of a tool call reaches the caller like text does: it starts the
                    // stream (a break after it is an interruption) and counts as a chunk.
                    if first.is_none() {
                        let now = self.clock.now();
                        first = Some((
                            milliseconds(opened, now),
                            milliseconds(self.call_started, now),
                        ));
                    }
                    chunks += 1;
                    let event = StreamEvent::ToolCallDelta {
                        index,
                        id: id.as_deref(),
                        name: name.as_deref(),
                        arguments: &arguments,
                    };
                    if (self.on_event)(event) == StreamControl::Stop {
                        drop(stream);
                        return Performed::Broken {
                            error: cancelled("stopped by the callback"),
                            stats: stats(first, chunks),
                            partial: text,
                        };
                    }
                }
                Ok(StreamChunk::Done(mut response)) => {
                    if chunks == 0 && !response.text.is_empty() {
                        // A terminal event carrying the whole text (a replayed call): one delta.
                        let now = self.clock.now();
                        first = Some((
                            milliseconds(opened, now),
                            milliseconds(self.call_started, now),
                        ));
                        chunks = 1;
                        if (self.on_event)(StreamEvent::Delta(&response.text))
                            == StreamControl::Stop
                        {
                            return Performed::Broken {
                                error: cancelled("stopped by the callback"),
                                stats: stats(first, chunks),
                                partial: response.text,
                            };
                        }
                    } else {
                        // The caller saw exactly the deltas: they are the answer.
                        response.text = text;
                    }
                    let call_stats = StreamStats {
                        time_to_first_token_ms: first.map_or(0.0, |(_, call)| call),
                        chunks,
                    };
                    return Performed::Answered(response, Some(call_stats));
                }
                Err(mut error) => {
                    drop(stream);
                    if cancel::is_cancelled() {
                        error = cancelled("cancelled by the caller");
                    } else if chunks > 0
                        && error.kind == FailureKind::Timeout
                        && Instant::now() >= self.deadline
                    {
                        error.message = format!(
                            "the call's deadline passed after {}",
                            crate::client::outcome::counted(chunks as usize, "chunk")
                        );
                    }
                    if chunks == 0 {
                        return Performed::Failed(error);
                    }
                    return Performed::Broken {
                        error,
                        stats: stats(first, chunks),
                        partial: text,
                    };
                }
            }
        }
    }

    fn restart(&mut self, provider: &str, model: &str, reason: &str) -> bool {
        if !self.settings.restart_on_incomplete {
            return false;
        }
        // A caller that stops at the restart keeps the incomplete ending.
        (self.on_event)(StreamEvent::Restart {
            provider,
            model,
            reason,
        }) == StreamControl::Continue
    }

    fn void(&mut self, provider: &str, model: &str, reason: &str) -> bool {
        (self.on_event)(StreamEvent::Restart {
            provider,
            model,
            reason,
        }) == StreamControl::Continue
    }
}

fn cancelled(message: &str) -> AttemptError {
    AttemptError::new(FailureKind::Cancelled, message)
}
