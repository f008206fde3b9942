//! A loopback OTLP/HTTP collector for tests, std only (plus `flate2` and the
//! `opentelemetry-proto` messages to read what it received). It listens on 127.0.0.1 on a free
//! port, keeps connections alive, records every request (path, headers, the body gunzipped when
//! `Content-Encoding: gzip`), answers 200 with an empty export response, and can be told to
//! answer a status (503, 429 with `Retry-After`, 400...) the next N times, or to stop
//! listening (a collector that is down). Bodies decode with `prost::Message::decode` into the
//! crate's `Export*ServiceRequest` messages (protobuf) or with serde_json as a `Value` (JSON).
//! Everything it starts stops when it is dropped; every wait in it is bounded.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// How often the accept loop looks at the stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The longest a connection may sit idle or a body take to arrive.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest body accepted (64 MiB), to keep a confused client from growing memory.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// One export request as the collector received it.
#[derive(Debug, Clone)]
pub struct CollectorRequest {
    /// The request target: `/v1/traces`, `/v1/metrics` or `/v1/logs`.
    pub path: String,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body as sent (compressed when it was).
    pub raw_body: Vec<u8>,
    /// The body gunzipped when `Content-Encoding: gzip`, else as sent.
    pub body: Vec<u8>,
    /// The status the collector answered.
    pub status: u16,
}

impl CollectorRequest {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether the collector accepted it (answered 200).
    pub fn accepted(&self) -> bool {
        self.status == 200
    }

    /// The body as an OTLP/JSON value; panics (failing the test) when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("OTLP/JSON body")
    }

    /// The body as a protobuf trace export request; panics when it does not decode.
    pub fn traces(&self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(self.body.as_slice()).expect("protobuf traces body")
    }

    /// The body as a protobuf metrics export request; panics when it does not decode.
    pub fn metrics(&self) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest::decode(self.body.as_slice()).expect("protobuf metrics body")
    }

    /// The body as a protobuf logs export request; panics when it does not decode.
    pub fn logs(&self) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest::decode(self.body.as_slice()).expect("protobuf logs body")
    }
}

/// A scripted failure: answer `status` (with `Retry-After: retry_after` seconds when given).
#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    retry_after: Option<u64>,
    body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Shared {
    requests: Vec<CollectorRequest>,
    failures: VecDeque<Failure>,
    /// The body of every 200 (an encoded export response, e.g. with `partial_success`).
    success_body: Vec<u8>,
    /// How long to wait before answering each request.
    delay: Duration,
    /// Record requests without their bodies (a bench sends hundreds of megabytes).
    discard_bodies: bool,
}

/// The collector; stops (and frees its port) when dropped or [`OtlpCollector::close`]d.
pub struct OtlpCollector {
    port: u16,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl OtlpCollector {
    /// Starts listening on 127.0.0.1 on a free port.
    pub fn start() -> OtlpCollector {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new((Mutex::new(Shared::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            thread::spawn(move || accept_loop(listener, shared, stop))
        };
        OtlpCollector {
            port,
            shared,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`, the base URL to give the exporter.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on (still reserved by nothing once closed).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers the next `times` requests with `status` (and `Retry-After: seconds` when given).
    pub fn fail_next(&self, times: usize, status: u16, retry_after: Option<u64>) {
        let mut shared = self.lock();
        for _ in 0..times {
            shared.failures.push_back(Failure {
                status,
                retry_after,
                body: Vec::new(),
            });
        }
    }

    /// Answers every 200 with `body` (an encoded `Export*ServiceResponse`).
    pub fn success_body(&self, body: Vec<u8>) {
        self.lock().success_body = body;
    }

    /// Waits `delay` before answering each request (a slow collector).
    pub fn answer_after(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Records requests without their bodies from now on (for benches).
    pub fn discard_bodies(&self) {
        self.lock().discard_bodies = true;
    }

    /// Stops listening: new connections are refused from now on.
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<CollectorRequest> {
        self.lock().requests.clone()
    }

    /// The requests received on `path` (`/v1/traces`...).
    pub fn requests_to(&self, path: &str) -> Vec<CollectorRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|request| request.path == path)
            .cloned()
            .collect()
    }

    /// How many trace requests the collector accepted (answered 200).
    pub fn traces_accepted(&self) -> usize {
        self.requests_to("/v1/traces")
            .iter()
            .filter(|request| request.accepted())
            .count()
    }

    /// Every span of every accepted protobuf trace request.
    pub fn spans(&self) -> Vec<Span> {
        self.requests_to("/v1/traces")
            .iter()
            .filter(|request| request.accepted())
            .flat_map(|request| request.traces().resource_spans)
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans)
            .collect()
    }

    /// Every log record of every accepted protobuf logs request.
    pub fn log_records(&self) -> Vec<LogRecord> {
        self.requests_to("/v1/logs")
            .iter()
            .filter(|request| request.accepted())
            .flat_map(|request| request.logs().resource_logs)
            .flat_map(|resource| resource.scope_logs)
            .flat_map(|scope| scope.log_records)
            .collect()
    }

    /// Waits (at most `timeout`) until `done` holds for the requests received; returns whether
    /// it did.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&[CollectorRequest]) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let (lock, arrived) = &*self.shared;
        let mut shared = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if done(&shared.requests) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            shared = arrived
                .wait_timeout(shared, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits (at most `timeout`) until `count` requests to `path` arrived.
    pub fn wait_for(&self, path: &str, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |requests| {
            requests
                .iter()
                .filter(|request| request.path == path)
                .count()
                >= count
        })
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for OtlpCollector {
    fn drop(&mut self) {
        self.close();
    }
}

fn accept_loop(
    listener: TcpListener,
    shared: Arc<(Mutex<Shared>, Condvar)>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(&shared);
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let _ = serve(stream, &shared, &stop);
                });
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(POLL_INTERVAL);
            }
            Err(_) => thread::sleep(POLL_INTERVAL),
        }
    }
}

/// Serves requests on one keep-alive connection until the client closes it or the collector
/// stops.
fn serve(
    stream: TcpStream,
    shared: &(Mutex<Shared>, Condvar),
    stop: &AtomicBool,
) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(header, _)| header == name)
                .map(|(_, value)| value.clone())
        };
        let raw_body = if header("transfer-encoding").is_some_and(|value| value.contains("chunked"))
        {
            read_chunked(&mut reader)?
        } else {
            let length: usize = header("content-length")
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            if length > MAX_BODY_BYTES {
                return Ok(());
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body)?;
            body
        };
        let discard = shared
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .discard_bodies;
        let (raw_body, body) = if discard {
            (Vec::new(), Vec::new())
        } else if header("content-encoding").is_some_and(|value| value == "gzip") {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(raw_body.as_slice()).read_to_end(&mut plain)?;
            (raw_body, plain)
        } else {
            (raw_body.clone(), raw_body)
        };
        // Decide the answer and record the request under one lock, so a test that saw the
        // request also sees what was answered.
        let (status, retry_after, reply_body, delay) = {
            let (lock, arrived) = shared;
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            let (status, retry_after, reply_body) = match state.failures.pop_front() {
                Some(failure) => (failure.status, failure.retry_after, failure.body),
                None => (200, None, state.success_body.clone()),
            };
            state.requests.push(CollectorRequest {
                path,
                headers: headers.clone(),
                raw_body,
                body,
                status,
            });
            arrived.notify_all();
            (status, retry_after, reply_body, state.delay)
        };
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let content_type =
            header("content-type").unwrap_or_else(|| "application/x-protobuf".into());
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n",
            reason(status),
            reply_body.len()
        );
        if let Some(seconds) = retry_after {
            head.push_str(&format!("retry-after: {seconds}\r\n"));
        }
        head.push_str("\r\n");
        writer.write_all(head.as_bytes())?;
        writer.write_all(&reply_body)?;
        writer.flush()?;
    }
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
        if body.len() + size > MAX_BODY_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
        }
        let mut chunk = vec![0; size];
        reader.read_exact(&mut chunk)?;
        body.extend_from_slice(&chunk);
        let mut line_end = String::new();
        reader.read_line(&mut line_end)?;
        if size == 0 {
            return Ok(body);
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
