//! The streaming POST: the request goes out as for [`HttpTransport::post_json`], and a 2xx
//! event stream comes back as a reader over the body as it arrives, each wait for bytes bounded
//! by a deadline the stream moves (the first-token limit, then the stall limit). Error statuses
//! and JSON answers are read whole, so providers classify them exactly as `call()` does.
//!
//! No thread per stream: the deadline is a thread-local the connection's transport applies to
//! each socket wait (`socket::with_deadline`). Dropping a [`StreamBody`] drops the connection
//! (ureq pools a connection only once its body was read to the end), so the server sees the
//! socket close at once and a half-read connection never returns to the pool.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use ureq::BodyReader;

use super::{HttpResponse, HttpTransport, MAX_RESPONSE_BYTES, Phase, classify};
use crate::client::socket::with_deadline;
use crate::client::types::{AttemptError, FailureKind};

/// What a streaming POST answered.
pub(crate) enum StreamReply {
    /// A 2xx whose body is not JSON (normally `text/event-stream`): read it as it arrives.
    Events(StreamBody),
    /// An error status, or a 2xx JSON body (a gateway that ignored `stream`): the whole
    /// response, capped as `post_json` caps it.
    Whole(HttpResponse),
}

/// The body of a streamed response; every read waits at most until the current deadline, then
/// fails with an error [`is_timeout`] recognises.
pub(crate) struct StreamBody {
    reader: BodyReader<'static>,
    deadline: Instant,
}

impl StreamBody {
    /// Moves the deadline of the reads to come.
    pub(crate) fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }
}

impl Read for StreamBody {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let reader = &mut self.reader;
        with_deadline(Some(self.deadline), || reader.read(buffer))
    }
}

/// Whether a body read failed because its deadline passed.
pub(crate) fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) || error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<ureq::Error>())
        .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)))
}

impl HttpTransport {
    /// POSTs the JSON `body` to `url` for a streamed answer. Connecting, sending and waiting for
    /// the headers must all end within `first_token` (a `timeout` failure saying so); the
    /// returned body keeps that deadline until the caller moves it.
    ///
    /// Sends `content-type: application/json` unless `headers` name another. The body of the
    /// stream is bounded only by the deadlines, not by a total time: a long answer may stream
    /// for longer than an attempt's timeout as long as it never stalls.
    pub(crate) fn post_stream(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        first_token: Duration,
    ) -> Result<StreamReply, AttemptError> {
        let deadline = Instant::now() + first_token;
        let no_first_token = || {
            AttemptError::new(
                FailureKind::Timeout,
                format!(
                    "no first token within {} ms (no response headers)",
                    first_token.as_millis()
                ),
            )
        };
        let agent = self.agent.read().clone();
        // Connecting and resolving do not go through the transport's waits: they get the
        // limit directly. Everything after is bounded by the thread-local deadline.
        let mut request = agent
            .post(url)
            .config()
            .timeout_resolve(Some(first_token))
            .timeout_connect(Some(first_token))
            .build();
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response =
            with_deadline(Some(deadline), || request.send(body)).map_err(|error| match error {
                ureq::Error::Timeout(_) if !crate::client::cancel::is_cancelled() => {
                    no_first_token()
                }
                ureq::Error::Io(ref io_error)
                    if is_timeout(io_error) && !crate::client::cancel::is_cancelled() =>
                {
                    no_first_token()
                }
                other => classify(other, Phase::BeforeBody, first_token),
            })?;
        if crate::client::cancel::is_cancelled() {
            return Err(super::cancelled());
        }
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let is_json = headers
            .iter()
            .find(|(name, _)| name == "content-type")
            .is_some_and(|(_, value)| value.to_ascii_lowercase().contains("json"));
        if (200..300).contains(&status) && !is_json {
            return Ok(StreamReply::Events(StreamBody {
                reader: response.into_body().into_reader(),
                deadline,
            }));
        }
        let body = with_deadline(Some(deadline), || {
            response
                .body_mut()
                .with_config()
                .limit(MAX_RESPONSE_BYTES)
                .read_to_vec()
        })
        .map_err(|error| match error {
            ureq::Error::Timeout(_) if !crate::client::cancel::is_cancelled() => no_first_token(),
            other => classify(other, Phase::Body, first_token),
        })?;
        // As in `post_json`: a body cut short by the cancel's shutdown is not the provider's.
        if crate::client::cancel::is_cancelled() {
            return Err(super::cancelled());
        }
        Ok(StreamReply::Whole(HttpResponse {
            status,
            headers,
            body,
        }))
    }
}
