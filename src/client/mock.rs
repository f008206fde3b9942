//! The mock provider: no key, no network. It answers deterministically (the same prompt gives
//! the same text and token counts), simulates latency on the engine's clock, and takes scripted
//! faults (fail the next N calls, fail a share of calls, time out, rate limit, a full outage) so
//! demos and tests can stage incidents. A request with an output schema gets JSON valid against
//! it, and one with tools a tool call (see `structured`), a configured share of them invalid.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use super::clock::{Clock, Random};
use super::stream::{ProviderStream, StreamChunk, StreamTimeouts};
use super::types::{
    AttemptError, FailureKind, FinishReason, Provider, ProviderRequest, ProviderResponse, Usage,
    UsageReported,
};
use crate::config::MockSettings;

mod generate;
mod structured;

/// Faults waiting to be served, consumed in this order: outage, timeouts, rate limits, failures,
/// then the random failure share.
#[derive(Debug, Default, Clone, PartialEq)]
struct FaultScript {
    outage_status: Option<u16>,
    time_out_next: u32,
    rate_limit_next: u32,
    rate_limit_retry_after: Option<Duration>,
    fail_next: u32,
    fail_next_status: u16,
    failure_share: f64,
    failure_share_status: u16,
    /// The next stream breaks this way after this many chunks.
    stream_fault: Option<(StreamFault, u32)>,
}

/// How the mock breaks a stream after its first chunks (see [`MockProvider::break_next_stream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamFault {
    /// The connection is cut: kind `malformed`, as a real event stream that breaks before its
    /// terminal event (see [`ProviderStream::next_chunk`](super::ProviderStream::next_chunk)).
    Cut,
    /// No chunk arrives: the mock sleeps past the stall limit (a cancel wakes it), then fails
    /// with kind `timeout`.
    Stall,
    /// An `error` event (an overloaded provider): kind `error_in_body`.
    ErrorEvent,
    /// The stream ends without its terminal event: kind `malformed`.
    NoTerminal,
}

/// An offline provider with scriptable faults.
#[derive(Debug)]
pub struct MockProvider {
    name: String,
    settings: MockSettings,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    script: Mutex<FaultScript>,
    calls: AtomicU64,
}

impl MockProvider {
    /// A mock standing in for provider `name`.
    pub fn new(
        name: impl Into<String>,
        settings: MockSettings,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        MockProvider {
            name: name.into(),
            settings,
            clock,
            random,
            script: Mutex::new(FaultScript::default()),
            calls: AtomicU64::new(0),
        }
    }

    /// The provider this mock stands in for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Calls received so far, failed ones included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The next `count` calls fail with HTTP `status`.
    pub fn fail_next(&self, count: u32, status: u16) {
        let mut script = self.script.lock();
        script.fail_next = count;
        script.fail_next_status = status;
    }

    /// A share (0 to 1) of calls fails with HTTP `status`, at random.
    pub fn fail_share(&self, share: f64, status: u16) {
        let mut script = self.script.lock();
        script.failure_share = share.clamp(0.0, 1.0);
        script.failure_share_status = status;
    }

    /// The next `count` calls hang until their timeout.
    pub fn time_out_next(&self, count: u32) {
        self.script.lock().time_out_next = count;
    }

    /// The next `count` calls get HTTP 429 with `retry_after`.
    pub fn rate_limit_next(&self, count: u32, retry_after: Option<Duration>) {
        let mut script = self.script.lock();
        script.rate_limit_next = count;
        script.rate_limit_retry_after = retry_after;
    }

    /// Every call fails with HTTP `status` until [`MockProvider::end_outage`].
    pub fn start_outage(&self, status: u16) {
        self.script.lock().outage_status = Some(status);
    }

    /// The next stream that gets past the before-first-token faults breaks with `fault` after
    /// `after_chunks` chunks (0: before any text, an ordinary attempt failure). One-shot.
    pub fn break_next_stream(&self, fault: StreamFault, after_chunks: u32) {
        self.script.lock().stream_fault = Some((fault, after_chunks));
    }

    /// Ends an outage.
    pub fn end_outage(&self) {
        self.script.lock().outage_status = None;
    }

    /// Removes every scripted fault.
    pub fn clear_faults(&self) {
        *self.script.lock() = FaultScript::default();
    }

    /// The fault this call gets, if any; consumes one-shot faults.
    fn next_fault(&self) -> Option<Fault> {
        let mut script = self.script.lock();
        if let Some(status) = script.outage_status {
            return Some(Fault::Status(status));
        }
        if script.time_out_next > 0 {
            script.time_out_next -= 1;
            return Some(Fault::Hang);
        }
        if script.rate_limit_next > 0 {
            script.rate_limit_next -= 1;
            return Some(Fault::RateLimited(script.rate_limit_retry_after));
        }
        if script.fail_next > 0 {
            script.fail_next -= 1;
            return Some(Fault::Status(script.fail_next_status));
        }
        if script.failure_share > 0.0 && self.random.next_f64() < script.failure_share {
            return Some(Fault::Status(script.failure_share_status));
        }
        None
    }

    fn latency(&self) -> Duration {
        let jitter = (self.settings.jitter_ms as f64 * self.random.next_f64()) as u64;
        Duration::from_millis(self.settings.latency_ms + jitter)
    }
}

enum Fault {
    Status(u16),
    RateLimited(Option<Duration>),
    Hang,
}

/// Tokens of `text` as the mock counts them: one per four bytes, rounded up.
pub fn mock_token_count(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

impl MockProvider {
    /// Counts the call, serves its before-answer fault and simulated latency, waiting at most
    /// `limit` (the attempt's timeout, or a stream's first-token limit); returns the call number.
    fn prelude(&self, limit: Duration) -> Result<u64, AttemptError> {
        let call_number = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let fault = self.next_fault();
        let timed_out = || {
            if super::cancel::is_cancelled() {
                return AttemptError::new(FailureKind::Cancelled, "cancelled by the caller");
            }
            AttemptError::new(
                FailureKind::Timeout,
                format!("mock {} timed out", self.name),
            )
        };
        if matches!(fault, Some(Fault::Hang)) {
            self.clock.sleep(limit);
            return Err(timed_out());
        }
        let latency = self.latency();
        if latency > limit {
            self.clock.sleep(limit);
            return Err(timed_out());
        }
        self.clock.sleep(latency);
        if super::cancel::is_cancelled() {
            return Err(AttemptError::new(
                FailureKind::Cancelled,
                "cancelled by the caller",
            ));
        }
        match fault {
            Some(Fault::Status(status)) => {
                let mut error =
                    AttemptError::http(status, format!("mock {} scripted failure", self.name));
                error.provider_error_type = Some("mock_fault".into());
                Err(error)
            }
            Some(Fault::RateLimited(retry_after)) => {
                let mut error = AttemptError::http(429, format!("mock {} rate limited", self.name));
                error.retry_after = retry_after;
                error.provider_error_type = Some("rate_limit_error".into());
                Err(error)
            }
            Some(Fault::Hang) | None => Ok(call_number),
        }
    }

    /// Whether this structured answer is to be invalid: a draw on the engine's `Random`
    /// against `invalid_output_share` (no draw when the share is 0, so a mock without it
    /// consumes the same random numbers as before).
    fn draw_invalid(&self) -> bool {
        let share = self.settings.invalid_output_share;
        share > 0.0 && self.random.next_f64() < share
    }

    /// The deterministic answer to `request`: prose, or for a request with an output schema
    /// or tools, JSON or tool calls.
    fn answer(&self, request: &ProviderRequest<'_>, call_number: u64) -> ProviderResponse {
        let prompt_characters: usize = request
            .messages
            .iter()
            .map(|message| message.content.len())
            .sum();
        let fingerprint = crate::targeting::fnv1a_32(
            &request
                .messages
                .iter()
                .map(|message| message.content.as_str())
                .collect::<Vec<_>>()
                .join("\u{1f}"),
        );
        let structured = structured::answer(request, u64::from(fingerprint), call_number, || {
            self.draw_invalid()
        });
        let (mut text, tool_calls, mut finish_reason) = match structured {
            Some(answer) => (answer.text, answer.tool_calls, answer.finish_reason),
            None => (
                format!(
                    "[mock {}/{}] Three suggested paths for this profile (prompt {prompt_characters} characters, \
                     fingerprint {fingerprint:08x}): 1. a step up in the current field; 2. a neighbouring role that \
                     reuses the strongest skills; 3. a larger change with a concrete first course.",
                    self.name, request.model
                ),
                Vec::new(),
                FinishReason::Stop,
            ),
        };
        if let Some(max_tokens) = request.parameters.max_tokens
            && tool_calls.is_empty()
            && mock_token_count(&text) > u64::from(max_tokens)
        {
            let mut cut = (max_tokens as usize) * 4;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            finish_reason = FinishReason::Length;
        }
        let input_tokens = request
            .messages
            .iter()
            .map(|message| mock_token_count(&message.content) + 4)
            .sum();
        let output_tokens = mock_token_count(&text)
            + tool_calls
                .iter()
                .map(|call| mock_token_count(&call.name) + mock_token_count(&call.arguments))
                .sum::<u64>();
        ProviderResponse {
            usage: Usage {
                input_tokens,
                output_tokens,
                ..Usage::default()
            },
            usage_reported: UsageReported::ALL,
            text,
            raw_finish_reason: Some(finish_reason.as_str().to_string()),
            finish_reason: Some(finish_reason),
            refusal: None,
            response_id: Some(format!("mock-{}-{call_number}", self.name)),
            response_model: Some(request.model.to_string()),
            tool_calls,
        }
    }
}

impl Provider for MockProvider {
    fn call(&self, request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        let call_number = self.prelude(request.timeout)?;
        Ok(self.answer(request, call_number))
    }

    fn stream(
        &self,
        request: &ProviderRequest<'_>,
        timeouts: StreamTimeouts,
    ) -> Result<Box<dyn ProviderStream + '_>, AttemptError> {
        let call_number = self.prelude(request.timeout.min(timeouts.first_token))?;
        let response = self.answer(request, call_number);
        let fault = self.script.lock().stream_fault.take();
        Ok(Box::new(MockStream::new(self, response, timeouts, fault)))
    }
}

/// A mock answer streamed in chunks of `stream_chunk_chars` characters (text deltas, then each
/// tool call's pieces), `stream_delay_ms` apart,
/// on the engine's clock; a scripted [`StreamFault`] breaks it.
struct MockStream<'p> {
    mock: &'p MockProvider,
    chunks: std::vec::IntoIter<StreamChunk>,
    sent: u32,
    response: Option<ProviderResponse>,
    timeouts: StreamTimeouts,
    fault: Option<(StreamFault, u32)>,
}

impl<'p> MockStream<'p> {
    fn new(
        mock: &'p MockProvider,
        response: ProviderResponse,
        timeouts: StreamTimeouts,
        fault: Option<(StreamFault, u32)>,
    ) -> Self {
        let size = (mock.settings.stream_chunk_chars as usize).max(1);
        let pieces = |text: &str| -> Vec<String> {
            let characters: Vec<char> = text.chars().collect();
            characters
                .chunks(size)
                .map(|chunk| chunk.iter().collect())
                .collect()
        };
        let mut chunks: Vec<StreamChunk> = pieces(&response.text)
            .into_iter()
            .map(StreamChunk::Delta)
            .collect();
        // Each tool call as the providers stream it: its id and name with the first piece of
        // its arguments, then the rest of the arguments piece by piece.
        for (index, call) in response.tool_calls.iter().enumerate() {
            let mut arguments = pieces(&call.arguments).into_iter();
            chunks.push(StreamChunk::ToolCallDelta {
                index,
                id: Some(call.id.clone()),
                name: Some(call.name.clone()),
                arguments: arguments.next().unwrap_or_default(),
            });
            chunks.extend(arguments.map(|piece| StreamChunk::ToolCallDelta {
                index,
                id: None,
                name: None,
                arguments: piece,
            }));
        }
        MockStream {
            mock,
            chunks: chunks.into_iter(),
            sent: 0,
            response: Some(response),
            timeouts,
            fault,
        }
    }

    fn fail(&self, fault: StreamFault) -> AttemptError {
        let name = &self.mock.name;
        let sent = self.sent;
        let after = super::outcome::counted(sent as usize, "chunk");
        match fault {
            StreamFault::Cut => AttemptError::new(
                FailureKind::Malformed,
                format!("mock {name} stream cut before its terminal event (after {after})"),
            ),
            StreamFault::Stall => {
                let limit = if sent == 0 {
                    self.timeouts.first_token
                } else {
                    self.timeouts.stall
                };
                self.mock.clock.sleep(limit);
                if super::cancel::is_cancelled() {
                    return AttemptError::new(FailureKind::Cancelled, "cancelled by the caller");
                }
                AttemptError::new(
                    FailureKind::Timeout,
                    format!(
                        "mock {name} stalled after {after}: nothing within {} ms",
                        limit.as_millis()
                    ),
                )
            }
            StreamFault::ErrorEvent => {
                let mut error = AttemptError::new(
                    FailureKind::ErrorInBody,
                    format!("mock {name} sent an error event after {after}: Overloaded"),
                );
                error.provider_error_type = Some("overloaded_error".into());
                error
            }
            StreamFault::NoTerminal => AttemptError::new(
                FailureKind::Malformed,
                format!("mock {name} stream ended without its terminal event after {after}"),
            ),
        }
    }
}

impl ProviderStream for MockStream<'_> {
    fn next_chunk(&mut self) -> Result<StreamChunk, AttemptError> {
        if let Some((fault, after)) = self.fault
            && self.sent >= after
        {
            self.fault = None;
            return Err(self.fail(fault));
        }
        match self.chunks.next() {
            Some(chunk) => {
                if self.sent > 0 && self.mock.settings.stream_delay_ms > 0 {
                    let delay = Duration::from_millis(self.mock.settings.stream_delay_ms);
                    if delay > self.timeouts.stall {
                        self.fault = None;
                        return Err(self.fail(StreamFault::Stall));
                    }
                    self.mock.clock.sleep(delay);
                    if super::cancel::is_cancelled() {
                        return Err(AttemptError::new(
                            FailureKind::Cancelled,
                            "cancelled by the caller",
                        ));
                    }
                }
                self.sent += 1;
                Ok(chunk)
            }
            None => match self.response.take() {
                Some(response) => Ok(StreamChunk::Done(response)),
                None => Err(AttemptError::new(
                    FailureKind::Malformed,
                    "mock stream read after its end",
                )),
            },
        }
    }
}
