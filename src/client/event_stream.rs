//! A streamed HTTP attempt: the SSE events of a response body, turned into
//! [`StreamChunk`]s by an API's [`StreamDecoder`], with the deadlines of [`StreamTimeouts`]
//! moved between reads and every way a stream can go wrong classified. A stream is a success
//! only when its terminal event arrives; the end of the body or a cut connection before it is a
//! `malformed` failure, never a short answer.

use crate::client::outcome::counted;
use std::collections::VecDeque;
use std::io::Read;
use std::time::{Duration, Instant};

use super::cancel;
use super::http::{StreamBody, is_timeout};
use super::secret::ApiKey;
use super::sse::{SseError, SseEvent, SseReader};
use super::stream::{ProviderStream, StreamChunk, StreamTimeouts};
use super::types::{AttemptError, FailureKind, ProviderRequest, ProviderResponse};

/// What one SSE event meant to the API's decoder.
pub(crate) enum Step {
    /// Nothing for the caller (a ping, a block start, an event type we do not know).
    Skip,
    /// Text to append (may be empty; empty text is skipped, never handed out).
    Delta(String),
    /// Several chunks from one event, in order: text and tool-call pieces (an OpenAI chunk may
    /// carry pieces of several tool calls). Empty ones are skipped, never handed out.
    Chunks(Vec<StreamChunk>),
    /// The terminal event: the whole response.
    Done(ProviderResponse),
}

/// How long the end of the body may take to arrive after the terminal event before the
/// connection is closed instead of pooled.
const DRAIN_GRACE: Duration = Duration::from_millis(20);

/// The most bytes read after the terminal event while looking for the end of the body.
const DRAIN_LIMIT: usize = 64 * 1024;

/// An API's reading of its stream events, accumulating what the final response needs.
pub(crate) trait StreamDecoder: Send + 'static {
    /// A decoder for the answer to `request` (which says, for instance, whether Anthropic's
    /// forced output tool carries the answer text).
    fn for_request(request: &ProviderRequest<'_>) -> Self;

    /// Interprets one event; an error event or an unreadable one is an `Err`.
    fn event(&mut self, event: SseEvent) -> Result<Step, AttemptError>;
}

/// A streamed attempt over HTTP, read with decoder `D`.
pub(crate) struct HttpStream<D> {
    events: SseReader<StreamBody>,
    decoder: D,
    /// Chunks of an event that yielded several, not yet handed out.
    pending: VecDeque<StreamChunk>,
    /// The limit before the first delta (the first-token limit, shortened by the attempt's
    /// timeout), counted from the request; the body already carries its deadline.
    first_token: Duration,
    stall: Duration,
    /// Text and tool-call deltas handed out.
    chunks: usize,
    finished: bool,
    /// The key sent, redacted from every error message (a server may echo it in an error event,
    /// as `call()` errors are redacted).
    key: Option<ApiKey>,
}

impl<D: StreamDecoder> HttpStream<D> {
    /// A stream over `body`, whose deadline is the first-token one, read by `decoder`.
    pub(crate) fn new(
        body: StreamBody,
        decoder: D,
        first_token: Duration,
        timeouts: StreamTimeouts,
        key: Option<ApiKey>,
    ) -> Self {
        HttpStream {
            key,
            events: SseReader::new(body),
            decoder,
            pending: VecDeque::new(),
            first_token,
            stall: timeouts.stall,
            chunks: 0,
            finished: false,
        }
    }

    /// Reads the body to its end after the terminal event, so ureq returns the connection
    /// to the pool (it pools only a body read to the end); the end normally arrives with the
    /// terminal event. A server that keeps sending or holds the body open past the grace only
    /// loses the connection, closed when the stream is dropped.
    fn drain(&mut self) {
        let body = self.events.get_mut();
        body.set_deadline(Instant::now() + DRAIN_GRACE);
        let mut scratch = [0u8; 1024];
        let mut drained = 0;
        while drained <= DRAIN_LIMIT {
            match body.read(&mut scratch) {
                Ok(0) | Err(_) => return,
                Ok(count) => drained += count,
            }
        }
    }

    fn fail(&mut self, mut error: AttemptError) -> Result<StreamChunk, AttemptError> {
        self.finished = true;
        if let Some(key) = &self.key {
            error.message = key.redact(&error.message);
        }
        Err(error)
    }

    fn read_failure(&self, error: SseError) -> AttemptError {
        let chunks = self.chunks;
        match error {
            // A cancelled stream's socket was shut down under it: the cause is the caller.
            SseError::Io(_) if cancel::is_cancelled() => {
                AttemptError::new(FailureKind::Cancelled, "cancelled by the caller")
            }
            SseError::Io(error) if is_timeout(&error) => {
                let message = if chunks == 0 {
                    format!("no first token within {} ms", self.first_token.as_millis())
                } else {
                    format!(
                        "stream stalled: no chunk for {} ms (after {})",
                        self.stall.as_millis(),
                        counted(chunks, "chunk")
                    )
                };
                AttemptError::new(FailureKind::Timeout, message)
            }
            SseError::Io(error) => AttemptError::new(
                FailureKind::Malformed,
                format!(
                    "stream cut before its terminal event (after {}): {error}",
                    counted(chunks, "chunk")
                ),
            ),
            SseError::TooLarge { limit } => AttemptError::new(
                FailureKind::Malformed,
                format!("malformed event stream: a line or event exceeds {limit} bytes"),
            ),
        }
    }
}

impl<D: StreamDecoder> ProviderStream for HttpStream<D> {
    fn next_chunk(&mut self) -> Result<StreamChunk, AttemptError> {
        if self.finished {
            return Err(AttemptError::new(
                FailureKind::Malformed,
                "stream read after its end",
            ));
        }
        // Before the first delta the body keeps the first-token deadline set at the request;
        // after it, each wait for the next delta may last the stall limit. Pings and other
        // skipped events do not move it: a stream sending only keep-alives is stalled.
        if let Some(chunk) = self.pending.pop_front() {
            self.chunks += 1;
            return Ok(chunk);
        }
        if self.chunks > 0 {
            self.events
                .get_mut()
                .set_deadline(Instant::now() + self.stall);
        }
        loop {
            let event = match self.events.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => {
                    let chunks = self.chunks;
                    return self.fail(AttemptError::new(
                        FailureKind::Malformed,
                        format!(
                            "stream ended before its terminal event (after {})",
                            counted(chunks, "chunk")
                        ),
                    ));
                }
                Err(error) => {
                    let error = self.read_failure(error);
                    return self.fail(error);
                }
            };
            match self.decoder.event(event) {
                Ok(Step::Skip) => {}
                Ok(Step::Delta(text)) if text.is_empty() => {}
                Ok(Step::Delta(text)) => {
                    self.chunks += 1;
                    return Ok(StreamChunk::Delta(text));
                }
                Ok(Step::Chunks(chunks)) => {
                    self.pending
                        .extend(chunks.into_iter().filter(|chunk| !is_empty(chunk)));
                    if let Some(chunk) = self.pending.pop_front() {
                        self.chunks += 1;
                        return Ok(chunk);
                    }
                }
                Ok(Step::Done(response)) => {
                    self.finished = true;
                    self.drain();
                    return Ok(StreamChunk::Done(response));
                }
                Err(error) => return self.fail(error),
            }
        }
    }
}

/// Whether a chunk carries nothing for the caller: empty text, or a tool-call piece with no id,
/// no name and no arguments text.
fn is_empty(chunk: &StreamChunk) -> bool {
    match chunk {
        StreamChunk::Delta(text) => text.is_empty(),
        StreamChunk::ToolCallDelta {
            id,
            name,
            arguments,
            ..
        } => id.is_none() && name.is_none() && arguments.is_empty(),
        StreamChunk::Done(_) => false,
    }
}
