//! A Server-Sent Events parser over a blocking byte reader, following the WHATWG HTML
//! standard's "interpreting an event stream" rules
//! (<https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation>):
//!
//! - lines end in CRLF, LF or CR (a CRLF split across two reads is still one line end);
//! - one U+FEFF byte order mark at the very start of the stream is skipped;
//! - a line starting with `:` is a comment and ignored;
//! - `field: value` with one optional space after the colon stripped; a line without a colon is
//!   a field with an empty value; fields other than `event`, `data`, `id`, `retry` are ignored;
//! - `data` lines are joined with `\n`; `id` containing NUL is ignored; `retry` only when it is
//!   ASCII digits;
//! - a blank line dispatches the event, unless no `data` line came (then nothing is dispatched
//!   and the event type is reset); an event cut by the end of the stream is discarded.
//!
//! Bytes that are not UTF-8 are decoded lossily (U+FFFD), as the standard's UTF-8 decode does;
//! they never make the parser fail or panic. Why our own parser: the established SSE crates
//! (`eventsource-stream`, `async-sse`, `sse-codec`) read an async `Stream`/`AsyncRead` only, and
//! the sans-IO ones that could sit on a blocking `Read` (`sse-parse` 0.1, `sse-core` 0.1) are
//! first releases with no track record; the rules above are this file.

use std::fmt;
use std::io::{self, Read};

/// The default bound on one line and on one event's data, in bytes: a provider's chunk is a few
/// hundred bytes, so a megabyte means a fault, and memory must not grow without limit.
pub(crate) const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Bytes read from the underlying reader at a time.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// The UTF-8 byte order mark, skipped once at the start of a stream.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, `message` when none was given.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event id seen so far in the stream (the standard keeps it across events).
    pub id: String,
    /// The last valid `retry:` value seen so far, in milliseconds.
    pub retry: Option<u64>,
}

/// Why the parser stopped.
#[derive(Debug)]
pub(crate) enum SseError {
    /// The reader failed (timeout, connection cut, cancel).
    Io(io::Error),
    /// A line or an event's data grew past the bound: the stream is malformed.
    TooLarge {
        /// The bound, in bytes.
        limit: usize,
    },
}

impl fmt::Display for SseError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::Io(error) => write!(formatter, "{error}"),
            SseError::TooLarge { limit } => {
                write!(
                    formatter,
                    "an event-stream line or event exceeds {limit} bytes"
                )
            }
        }
    }
}

/// The event being assembled from field lines.
#[derive(Debug, Default)]
struct Pending {
    event: String,
    data: String,
    has_data: bool,
    id: String,
    retry: Option<u64>,
    seen_first_line: bool,
}

impl Pending {
    /// Interprets one line (without its terminator); an event when the line is blank.
    fn line(&mut self, mut line: &[u8], limit: usize) -> Result<Option<SseEvent>, SseError> {
        if !self.seen_first_line {
            self.seen_first_line = true;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            return Ok(self.dispatch());
        }
        if line[0] == b':' {
            return Ok(None);
        }
        let (field, value) = match line.iter().position(|&byte| byte == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                if self.data.len() + value.len() + 1 > limit {
                    return Err(SseError::TooLarge { limit });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"id" if !value.contains(&0) => {
                self.id = String::from_utf8_lossy(value).into_owned();
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Digits only, so the text parses unless it overflows u64: then it is ignored.
                self.retry = std::str::from_utf8(value)
                    .ok()
                    .and_then(|digits| digits.parse().ok())
                    .or(self.retry);
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event_type = std::mem::take(&mut self.event);
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event: if event_type.is_empty() {
                "message".to_string()
            } else {
                event_type
            },
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
            retry: self.retry,
        })
    }
}

/// Reads events from a blocking reader, a line at a time from its own buffer.
pub(crate) struct SseReader<R> {
    reader: R,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    /// A line that spans reads.
    line: Vec<u8>,
    /// The previous line ended in CR: an LF right after it belongs to the same line end.
    after_cr: bool,
    ended: bool,
    limit: usize,
    pending: Pending,
}

impl<R: Read> SseReader<R> {
    /// A parser over `reader` with the default bound ([`MAX_EVENT_BYTES`]).
    pub(crate) fn new(reader: R) -> SseReader<R> {
        SseReader::with_limit(reader, MAX_EVENT_BYTES)
    }

    /// A parser whose lines and event data may not exceed `limit` bytes.
    pub(crate) fn with_limit(reader: R, limit: usize) -> SseReader<R> {
        SseReader {
            reader,
            buffer: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            line: Vec::new(),
            after_cr: false,
            ended: false,
            limit,
            pending: Pending::default(),
        }
    }

    /// The underlying reader (to change its deadline between events).
    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// The next event; `None` at the end of the stream (a partial event there is discarded).
    /// Errors leave the parser where it was, so a read interrupted by a timeout may not be
    /// retried meaningfully: callers treat every error as the end.
    pub(crate) fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if self.start == self.end {
                if self.ended {
                    return Ok(None);
                }
                let count = loop {
                    match self.reader.read(&mut self.buffer) {
                        Ok(count) => break count,
                        Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                        Err(error) => return Err(SseError::Io(error)),
                    }
                };
                if count == 0 {
                    self.ended = true;
                    return Ok(None);
                }
                self.start = 0;
                self.end = count;
            }
            let chunk = &self.buffer[self.start..self.end];
            if self.after_cr {
                self.after_cr = false;
                if chunk[0] == b'\n' {
                    self.start += 1;
                    continue;
                }
            }
            match chunk
                .iter()
                .position(|&byte| byte == b'\n' || byte == b'\r')
            {
                Some(line_end) => {
                    self.after_cr = chunk[line_end] == b'\r';
                    let event = if self.line.is_empty() {
                        if line_end > self.limit {
                            return Err(SseError::TooLarge { limit: self.limit });
                        }
                        self.pending.line(&chunk[..line_end], self.limit)?
                    } else {
                        self.line.extend_from_slice(&chunk[..line_end]);
                        if self.line.len() > self.limit {
                            return Err(SseError::TooLarge { limit: self.limit });
                        }
                        let event = self.pending.line(&self.line, self.limit)?;
                        self.line.clear();
                        event
                    };
                    self.start += line_end + 1;
                    if event.is_some() {
                        return Ok(event);
                    }
                }
                None => {
                    self.line.extend_from_slice(chunk);
                    if self.line.len() > self.limit {
                        return Err(SseError::TooLarge { limit: self.limit });
                    }
                    self.start = self.end;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `bytes` in reads of the given sizes (cycled), like a network delivering them.
    struct Pieces {
        bytes: Vec<u8>,
        at: usize,
        sizes: Vec<usize>,
        next: usize,
    }

    impl Read for Pieces {
        fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.next % self.sizes.len()].max(1);
            self.next += 1;
            let count = size.min(buffer.len()).min(self.bytes.len() - self.at);
            buffer[..count].copy_from_slice(&self.bytes[self.at..self.at + count]);
            self.at += count;
            Ok(count)
        }
    }

    fn events_in_pieces(
        bytes: &[u8],
        sizes: Vec<usize>,
        limit: usize,
    ) -> Result<Vec<SseEvent>, String> {
        let reader = Pieces {
            bytes: bytes.to_vec(),
            at: 0,
            sizes,
            next: 0,
        };
        let mut parser = SseReader::with_limit(reader, limit);
        let mut events = Vec::new();
        loop {
            match parser.next_event() {
                Ok(Some(event)) => events.push(event),
                Ok(None) => return Ok(events),
                Err(error) => return Err(error.to_string()),
            }
        }
    }

    fn events(bytes: &[u8]) -> Vec<SseEvent> {
        events_in_pieces(bytes, vec![usize::MAX], MAX_EVENT_BYTES).unwrap()
    }

    fn data(bytes: &[u8]) -> Vec<String> {
        events(bytes).into_iter().map(|event| event.data).collect()
    }

    #[test]
    fn a_data_line_then_a_blank_line_is_one_message_event() {
        let parsed = events(b"data: hello\n\n");
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].event, "message");
        assert_eq!(parsed[0].data, "hello");
    }

    #[test]
    fn multiple_data_lines_are_joined_with_newlines() {
        assert_eq!(data(b"data: a\ndata:b\ndata\ndata: c\n\n"), ["a\nb\n\nc"]);
    }

    #[test]
    fn comment_lines_are_ignored() {
        assert_eq!(data(b": keep-alive\ndata: x\n: more\n\n:\n\n"), ["x"]);
    }

    #[test]
    fn crlf_lf_and_cr_all_end_lines() {
        assert_eq!(
            data(b"data: a\r\n\r\ndata: b\n\ndata: c\r\rdata: d\r\ndata: e\r\r\n"),
            ["a", "b", "c", "d\ne"]
        );
    }

    #[test]
    fn a_crlf_split_between_reads_is_one_line_end() {
        let parsed = events_in_pieces(b"data: a\r\n\r\n", vec![8, 1, 1, 1], 64).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].data, "a");
    }

    #[test]
    fn only_one_space_after_the_colon_is_stripped() {
        assert_eq!(data(b"data:  two spaces\n\n"), [" two spaces"]);
        assert_eq!(data(b"data:none\n\n"), ["none"]);
    }

    #[test]
    fn the_event_field_names_the_event_and_resets_after_dispatch() {
        let parsed = events(b"event: ping\ndata: {}\n\ndata: next\n\n");
        assert_eq!(parsed[0].event, "ping");
        assert_eq!(parsed[1].event, "message");
    }

    #[test]
    fn an_event_without_data_is_not_dispatched() {
        let parsed = events(b"event: ping\n\ndata: after\n\n");
        assert_eq!(parsed.len(), 1);
        assert_eq!(
            (parsed[0].event.as_str(), parsed[0].data.as_str()),
            ("message", "after")
        );
    }

    #[test]
    fn an_empty_data_line_dispatches_an_empty_event() {
        assert_eq!(data(b"data\n\ndata:\n\n"), ["", ""]);
    }

    #[test]
    fn an_event_cut_by_the_end_of_the_stream_is_discarded() {
        assert_eq!(data(b"data: whole\n\ndata: cut"), ["whole"]);
        assert_eq!(data(b"data: whole\n\ndata: no blank line\n"), ["whole"]);
    }

    #[test]
    fn id_persists_and_retry_must_be_digits() {
        let parsed =
            events(b"id: 7\nretry: 1500\ndata: a\n\nretry: soon\ndata: b\n\nid: x\0y\ndata: c\n\n");
        assert_eq!((parsed[0].id.as_str(), parsed[0].retry), ("7", Some(1500)));
        assert_eq!((parsed[1].id.as_str(), parsed[1].retry), ("7", Some(1500)));
        assert_eq!(parsed[2].id, "7");
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(data(b"foo: bar\ndata: x\nDATA: y\n\n"), ["x"]);
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_once() {
        assert_eq!(data(b"\xEF\xBB\xBFdata: a\n\n"), ["a"]);
        // Only at the start: a second BOM makes an unknown field name.
        assert_eq!(
            data(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        assert_eq!(data(b"data: a\xFFb\n\n"), ["a\u{FFFD}b"]);
    }

    #[test]
    fn a_line_longer_than_the_bound_fails_as_too_large() {
        let mut long = b"data: ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 100));
        let error = events_in_pieces(&long, vec![7], 64).unwrap_err();
        assert!(error.contains("exceeds 64 bytes"), "{error}");
    }

    #[test]
    fn data_lines_adding_up_past_the_bound_fail_as_too_large() {
        let many = b"data: 0123456789\n".repeat(10);
        assert!(events_in_pieces(&many, vec![usize::MAX], 64).is_err());
    }

    #[test]
    fn a_read_error_is_reported_as_io() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        assert!(matches!(
            SseReader::new(Broken).next_event(),
            Err(SseError::Io(error)) if error.kind() == io::ErrorKind::ConnectionReset
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
            sizes in proptest::collection::vec(1usize..40, 1..8),
        ) {
            let _ = events_in_pieces(&bytes, sizes, 128);
        }

        #[test]
        fn splitting_the_input_anywhere_gives_the_same_events(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::string::string_regex("(data|event|id|retry|:|x)(: ?)?[a-z0-9 :]{0,12}").unwrap(),
                    proptest::strategy::Just(String::new()),
                ],
                0..24,
            ),
            endings in proptest::collection::vec(proptest::sample::select(vec!["\n", "\r", "\r\n"]), 1..4),
            sizes in proptest::collection::vec(1usize..17, 1..8),
        ) {
            let mut text = String::from("\u{FEFF}");
            for (index, line) in lines.iter().enumerate() {
                text.push_str(line);
                text.push_str(endings[index % endings.len()]);
            }
            let whole = events_in_pieces(text.as_bytes(), vec![usize::MAX], MAX_EVENT_BYTES);
            let split = events_in_pieces(text.as_bytes(), sizes, MAX_EVENT_BYTES);
            proptest::prop_assert_eq!(whole, split);
        }
    }
}
