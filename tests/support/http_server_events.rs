//! The event-stream replies of the scripted server (`http_server.rs`): Server-Sent Events sent
//! with chunked transfer encoding, one chunk per event, with waits between them, and the close
//! of the connection by the client observed while the server waits.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{LONGEST_WAIT, POLL_INTERVAL, Reply, Shared, lock, reason};

/// How an event-stream reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventsEnd {
    /// Every event, then the last chunk; the connection stays open for another request.
    Finish,
    /// The first N events, then the connection is closed without the last chunk.
    Cut(usize),
    /// The first N events, then nothing until the client closes or the server stops.
    Hang(usize),
}

/// Streams an event-stream reply; returns whether the connection stays open.
pub(super) fn send_events(
    stream: &mut TcpStream,
    reply: &Reply,
    end: EventsEnd,
    shared: &Shared,
) -> bool {
    if !shared.sleep(reply.delay_before_headers) {
        return false;
    }
    let mut pending = format!(
        "HTTP/1.1 {} {}\r\ntransfer-encoding: chunked\r\ncache-control: no-cache\r\n",
        reply.status,
        reason(reply.status)
    )
    .into_bytes();
    for (name, value) in &reply.headers {
        pending.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    pending.extend_from_slice(b"\r\n");
    let sent = match end {
        EventsEnd::Finish => reply.events.len(),
        EventsEnd::Cut(count) | EventsEnd::Hang(count) => count.min(reply.events.len()),
    };
    for (wait, event) in &reply.events[..sent] {
        // Events with no wait between them go out in one write, as a fast server's would.
        if !wait.is_zero() {
            if stream.write_all(&pending).is_err() {
                return false;
            }
            pending.clear();
            if !watch_for_close(stream, *wait, shared) {
                return false;
            }
        }
        pending.extend_from_slice(format!("{:x}\r\n", event.len()).as_bytes());
        pending.extend_from_slice(event);
        pending.extend_from_slice(b"\r\n");
    }
    if end == EventsEnd::Finish {
        pending.extend_from_slice(b"0\r\n\r\n");
    }
    if stream.write_all(&pending).is_err() || stream.flush().is_err() {
        return false;
    }
    match end {
        EventsEnd::Finish => true,
        EventsEnd::Cut(_) => false,
        EventsEnd::Hang(_) => {
            watch_for_close(stream, LONGEST_WAIT, shared);
            false
        }
    }
}

/// Waits `duration` reading from the client; false (with the time recorded) as soon as the
/// client closes the connection, or when the server stops.
fn watch_for_close(stream: &mut TcpStream, duration: Duration, shared: &Shared) -> bool {
    let until = Instant::now() + duration;
    let mut scratch = [0u8; 1024];
    while Instant::now() < until {
        if shared.stopping() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if stream
            .set_read_timeout(Some(POLL_INTERVAL.min(left).max(Duration::from_millis(1))))
            .is_err()
        {
            return false;
        }
        match stream.read(&mut scratch) {
            Ok(0) => {
                lock(&shared.stream_closes).push(Instant::now());
                return false;
            }
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => {
                lock(&shared.stream_closes).push(Instant::now());
                return false;
            }
        }
    }
    stream.set_read_timeout(Some(POLL_INTERVAL)).is_ok()
}
