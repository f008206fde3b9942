//! A scripted HTTP/1.1 server for tests, std only. It listens on 127.0.0.1 on a free port,
//! answers requests with a script of [`Reply`]s in order (then a fallback), records every request
//! and counts connections, keeps connections alive between requests as real APIs do, and can
//! misbehave on purpose: late headers, a trickling body, a body cut short, no answer at all, a
//! connection closed without a reply, or bytes that are not HTTP. It also streams Server-Sent
//! Events (chunked, one chunk per event, with delays, cut or hanging after N events) and records
//! when the client closed a streaming connection. Everything it starts stops when it is dropped;
//! every wait in it is bounded.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often blocked loops look at the stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The longest anything waits: an idle connection, a hanging reply, a blocked write.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Bytes per write of a slow body.
const SLOW_CHUNK_BYTES: usize = 8;

/// How many requests a server started with a responder records (a bench sends millions).
pub const MAX_RECORDED: usize = 1000;

/// The largest request head accepted, to keep a confused client from growing memory.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The request target, such as `/v1/messages`.
    pub path: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
    /// Which connection carried it, counting from 0 in accept order.
    pub connection: usize,
}

impl RecordedRequest {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON; panics when it is not, which fails the test.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("request body is JSON")
    }
}

/// How a reply ends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    /// Sends everything and keeps the connection for the next request.
    Complete,
    /// Announces more body than it sends, then closes.
    Truncated,
    /// Sends no `content-length`: the body ends when the connection closes (HTTP/1.1 §6.3).
    CloseDelimited,
    /// Sends nothing and holds the connection until the server stops.
    Hang,
    /// Closes the connection without sending anything.
    CloseImmediately,
    /// Sends the body bytes as they are, without status line or headers, then closes.
    Raw,
    /// Streams `events` with chunked transfer encoding, then ends as `after` says.
    Events(EventsEnd),
}

/// One scripted answer, built with chained calls.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    delay_before_headers: Duration,
    body_chunk_interval: Option<Duration>,
    ending: Ending,
    /// The events of an event-stream reply, each with the wait before it.
    events: Vec<(Duration, Vec<u8>)>,
}

impl Reply {
    /// A reply with `status` and an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay_before_headers: Duration::ZERO,
            body_chunk_interval: None,
            ending: Ending::Complete,
            events: Vec::new(),
        }
    }

    /// A 200 `text/event-stream` reply sending `events` (each the raw bytes of one event, such
    /// as `"data: {}\n\n"`) as one chunk each, then the last chunk; the connection stays open.
    pub fn events<E: Into<Vec<u8>>>(events: impl IntoIterator<Item = E>) -> Reply {
        Reply {
            ending: Ending::Events(EventsEnd::Finish),
            events: events
                .into_iter()
                .map(|event| (Duration::ZERO, event.into()))
                .collect(),
            ..Reply::status(200).header("content-type", "text/event-stream")
        }
    }

    /// Waits `delay` before every event.
    pub fn event_interval(mut self, delay: Duration) -> Reply {
        for (wait, _) in &mut self.events {
            *wait = delay;
        }
        self
    }

    /// Waits `delay` before event `index` (counting from 0) only.
    pub fn delay_before_event(mut self, index: usize, delay: Duration) -> Reply {
        if let Some((wait, _)) = self.events.get_mut(index) {
            *wait = delay;
        }
        self
    }

    /// Sends the first `count` events, then closes the connection mid-body.
    pub fn cut_after(mut self, count: usize) -> Reply {
        self.ending = Ending::Events(EventsEnd::Cut(count));
        self
    }

    /// Sends the first `count` events, then nothing until the client closes the connection.
    pub fn hang_after(mut self, count: usize) -> Reply {
        self.ending = Ending::Events(EventsEnd::Hang(count));
        self
    }

    /// A reply with `status` and `body` as `application/json`.
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::status(status)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// A reply with `status` and a `text/plain` body.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply::status(status)
            .header("content-type", "text/plain")
            .body(body)
    }

    /// Sends no reply and keeps the connection open until the server is dropped (30 s at most).
    pub fn hang() -> Reply {
        Reply {
            ending: Ending::Hang,
            ..Reply::status(0)
        }
    }

    /// Reads the request, then closes the connection without a byte of reply.
    pub fn close_immediately() -> Reply {
        Reply {
            ending: Ending::CloseImmediately,
            ..Reply::status(0)
        }
    }

    /// Sends `bytes` verbatim in place of a response, then closes.
    pub fn raw(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            ending: Ending::Raw,
            ..Reply::status(0).body(bytes)
        }
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Replaces the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    /// Waits `delay` after reading the request before sending anything.
    pub fn delay_before_headers(mut self, delay: Duration) -> Reply {
        self.delay_before_headers = delay;
        self
    }

    /// Sends the body in small chunks with `interval` between them.
    pub fn slow_body(mut self, interval: Duration) -> Reply {
        self.body_chunk_interval = Some(interval);
        self
    }

    /// Sends no `content-length`, so the body ends with the connection, which closes after it:
    /// a client cut off early then sees a clean end of body, not an error.
    pub fn close_delimited(mut self) -> Reply {
        self.ending = Ending::CloseDelimited;
        self
    }

    /// Announces a `content-length` larger than the body, sends the body, then closes.
    pub fn truncated(mut self) -> Reply {
        self.ending = Ending::Truncated;
        self
    }
}

#[path = "http_server_events.rs"]
mod events;

use events::{EventsEnd, send_events};

/// Chooses the reply to a request (see [`TestServer::start_answering`]).
type Responder = dyn Fn(&RecordedRequest) -> Reply + Send + Sync;

/// State shared by the accept loop, the connection workers and the test.
struct Shared {
    stopping: AtomicBool,
    script: Mutex<VecDeque<Reply>>,
    fallback: Reply,
    responder: Option<Box<Responder>>,
    requests: Mutex<Vec<RecordedRequest>>,
    connections: AtomicUsize,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// When the client closed a connection in the middle of an event-stream reply.
    stream_closes: Mutex<Vec<Instant>>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Sleeps up to `duration`, returning false when the server began stopping meanwhile.
    fn sleep(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        while Instant::now() < until {
            if self.stopping() {
                return false;
            }
            thread::sleep(POLL_INTERVAL.min(until.saturating_duration_since(Instant::now())));
        }
        !self.stopping()
    }
}

/// A running scripted server; dropping it stops every thread it started.
pub struct TestServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server answering with `script`, then `500 {"error":"script exhausted"}`.
    pub fn start(script: Vec<Reply>) -> TestServer {
        let exhausted = serde_json::json!({"error": {"message": "test server script exhausted"}});
        TestServer::start_with_fallback(script, Reply::json(500, &exhausted))
    }

    /// Starts a server answering with `script`, then with `fallback` forever.
    pub fn start_with_fallback(script: Vec<Reply>, fallback: Reply) -> TestServer {
        TestServer::start_inner(script, fallback, None)
    }

    /// Starts a server answering every request with what `responder` returns for it (an event
    /// stream to a request with `"stream": true` and JSON otherwise, say). Meant for benches:
    /// only the first [`MAX_RECORDED`] requests are recorded.
    pub fn start_answering(
        responder: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    ) -> TestServer {
        TestServer::start_inner(Vec::new(), Reply::status(500), Some(Box::new(responder)))
    }

    fn start_inner(
        script: Vec<Reply>,
        fallback: Reply,
        responder: Option<Box<Responder>>,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let address = listener.local_addr().expect("local address");
        // Non-blocking so the accept loop can notice the stop flag.
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            script: Mutex::new(script.into()),
            fallback,
            responder,
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            workers: Mutex::new(Vec::new()),
            stream_closes: Mutex::new(Vec::new()),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(&listener, &shared))
        };
        TestServer {
            address,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// The only request received; panics (failing the test) unless there was exactly one.
    pub fn single_request(&self) -> RecordedRequest {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected exactly one request");
        requests.into_iter().next().expect("one request")
    }

    /// When the server saw the client close a connection in the middle of an event-stream
    /// reply (while waiting to send an event, or hanging), waiting up to `within` for it.
    pub fn wait_for_stream_close(&self, within: Duration) -> Option<Instant> {
        let until = Instant::now() + within;
        loop {
            if let Some(closed) = lock(&self.shared.stream_closes).first() {
                return Some(*closed);
            }
            if Instant::now() >= until {
                return None;
            }
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// How many TCP connections were accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                let index = shared.connections.fetch_add(1, Ordering::SeqCst);
                let worker_shared = Arc::clone(shared);
                let worker = thread::spawn(move || serve(stream, index, &worker_shared));
                lock(&shared.workers).push(worker);
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(POLL_INTERVAL);
            }
            Err(_) => thread::sleep(POLL_INTERVAL),
        }
    }
}

fn serve(mut stream: TcpStream, index: usize, shared: &Shared) {
    // Some platforms hand out accepted sockets with the listener's non-blocking flag.
    // No Nagle: headers and body go out as separate writes, and Nagle plus the client's delayed
    // ACK would add 40 ms to every reply.
    if stream.set_nonblocking(false).is_err()
        || stream.set_nodelay(true).is_err()
        || stream.set_read_timeout(Some(POLL_INTERVAL)).is_err()
        || stream.set_write_timeout(Some(LONGEST_WAIT)).is_err()
    {
        return;
    }
    let mut pending = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut pending, index, shared) {
        let reply = match &shared.responder {
            Some(responder) => responder(&request),
            None => lock(&shared.script)
                .pop_front()
                .unwrap_or_else(|| shared.fallback.clone()),
        };
        let mut requests = lock(&shared.requests);
        if shared.responder.is_none() || requests.len() < MAX_RECORDED {
            requests.push(request);
        }
        drop(requests);
        if !send(&mut stream, &reply, shared) {
            return;
        }
    }
}

/// Reads one request (head plus `content-length` body); None when the connection or server ends.
fn read_request(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    connection: usize,
    shared: &Shared,
) -> Option<RecordedRequest> {
    let idle_since = Instant::now();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(head_end) = find(pending, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
            let mut request = parse_head(&head, connection)?;
            let length = request
                .header("content-length")
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let body_start = head_end + 4;
            if pending.len() >= body_start + length {
                request.body =
                    String::from_utf8_lossy(&pending[body_start..body_start + length]).into_owned();
                // Anything after this request belongs to the next one on the connection.
                pending.drain(..body_start + length);
                return Some(request);
            }
        } else if pending.len() > MAX_HEAD_BYTES {
            return None;
        }
        if shared.stopping() || idle_since.elapsed() > LONGEST_WAIT {
            return None;
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(count) => pending.extend_from_slice(&chunk[..count]),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return None,
        }
    }
}

/// The request line and headers, with an empty body still to be read.
fn parse_head(head: &str, connection: usize) -> Option<RecordedRequest> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_string();
    let path = request_line.next()?.to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Some(RecordedRequest {
        method,
        path,
        headers,
        body: String::new(),
        connection,
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Sends `reply`; returns whether the connection stays open for another request.
fn send(stream: &mut TcpStream, reply: &Reply, shared: &Shared) -> bool {
    match reply.ending {
        Ending::CloseImmediately => return false,
        Ending::Hang => {
            shared.sleep(LONGEST_WAIT);
            return false;
        }
        Ending::Raw => {
            let _ = stream.write_all(&reply.body);
            return false;
        }
        Ending::Events(end) => return send_events(stream, reply, end, shared),
        Ending::Complete | Ending::Truncated | Ending::CloseDelimited => {}
    }
    if !shared.sleep(reply.delay_before_headers) {
        return false;
    }
    let announced = match reply.ending {
        Ending::Truncated => reply.body.len() + 100,
        _ => reply.body.len(),
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    if reply.ending == Ending::CloseDelimited {
        head.push_str("connection: close\r\n");
    } else {
        head.push_str(&format!("content-length: {announced}\r\n"));
    }
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return false;
    }
    match reply.body_chunk_interval {
        Some(interval) => {
            for piece in reply.body.chunks(SLOW_CHUNK_BYTES) {
                if stream.write_all(piece).is_err() || stream.flush().is_err() {
                    return false;
                }
                if !shared.sleep(interval) {
                    return false;
                }
            }
        }
        None => {
            if stream.write_all(&reply.body).is_err() {
                return false;
            }
        }
    }
    let _ = stream.flush();
    reply.ending == Ending::Complete
}

/// The reason phrase sent with `status`.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        529 => "Site Overloaded",
        _ => "Status",
    }
}
