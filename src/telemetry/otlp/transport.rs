//! One OTLP/HTTP export request, start to end, on the exporter's thread: the message encoded
//! (protobuf with `prost`, or the OTLP JSON mapping with serde), gzipped, POSTed with the
//! configured headers by the exporter's own ureq agent, and retried as the OTLP/HTTP spec asks
//! (<https://opentelemetry.io/docs/specs/otlp/#otlphttp-throttling>): 429, 502, 503, 504 and
//! connection failures again after an exponential backoff with jitter, or after `Retry-After`
//! seconds when the collector says so, a bounded number of times within a bounded time; any
//! other 4xx is final. What is delivered, refused or given up on is counted in the engine's
//! [`OtlpCounters`]; nothing here returns an error to anyone: a request never waits on export.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;
use ureq::Agent;

use super::{OtlpOptions, OtlpProtocol};
use crate::telemetry::metrics::{OtlpCounters, OtlpSignal};

/// `User-Agent` of every export request.
pub const USER_AGENT: &str = concat!("prompt-config/", env!("CARGO_PKG_VERSION"));

/// Sends after the first, at most: 6 tries in all.
const MAX_RETRIES: u32 = 5;

/// The first backoff; each retry doubles it, up to [`MAX_BACKOFF`], then ±50 % jitter.
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);

/// The longest backoff between two tries (a longer `Retry-After` is honoured within
/// [`MAX_RETRY_ELAPSED`]).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long one batch may keep being retried before it is given up on (counted `failed`).
const MAX_RETRY_ELAPSED: Duration = Duration::from_secs(30);

/// How much of a collector's response body is read (a `partial_success` is small).
const MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

/// How often a backoff sleep looks at the give-up flag.
const SLEEP_SLICE: Duration = Duration::from_millis(20);

/// One of the three OTLP export requests, ready to encode.
#[derive(Debug)]
pub enum Export {
    /// Spans to `/v1/traces`.
    Traces(ExportTraceServiceRequest),
    /// Log records to `/v1/logs`.
    Logs(ExportLogsServiceRequest),
    /// Metric data points to `/v1/metrics`.
    Metrics(ExportMetricsServiceRequest),
}

impl Export {
    fn signal(&self) -> OtlpSignal {
        match self {
            Export::Traces(_) => OtlpSignal::Traces,
            Export::Logs(_) => OtlpSignal::Logs,
            Export::Metrics(_) => OtlpSignal::Metrics,
        }
    }

    /// Spans, log records or metric data points carried.
    pub fn items(&self) -> u64 {
        let count: usize = match self {
            Export::Traces(request) => request
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .map(|scope| scope.spans.len())
                .sum(),
            Export::Logs(request) => request
                .resource_logs
                .iter()
                .flat_map(|resource| &resource.scope_logs)
                .map(|scope| scope.log_records.len())
                .sum(),
            Export::Metrics(request) => request
                .resource_metrics
                .iter()
                .flat_map(|resource| &resource.scope_metrics)
                .flat_map(|scope| &scope.metrics)
                .map(|metric| match &metric.data {
                    Some(Data::Gauge(gauge)) => gauge.data_points.len(),
                    Some(Data::Sum(sum)) => sum.data_points.len(),
                    Some(Data::Histogram(histogram)) => histogram.data_points.len(),
                    Some(Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
                    Some(Data::Summary(summary)) => summary.data_points.len(),
                    None => 0,
                })
                .sum(),
        };
        u64::try_from(count).unwrap_or(u64::MAX)
    }

    fn encode(&self, protocol: OtlpProtocol) -> Result<Vec<u8>, serde_json::Error> {
        match protocol {
            OtlpProtocol::HttpProtobuf => Ok(match self {
                Export::Traces(request) => request.encode_to_vec(),
                Export::Logs(request) => request.encode_to_vec(),
                Export::Metrics(request) => request.encode_to_vec(),
            }),
            OtlpProtocol::HttpJson => match self {
                Export::Traces(request) => serde_json::to_vec(request),
                Export::Logs(request) => serde_json::to_vec(request),
                Export::Metrics(request) => serde_json::to_vec(request),
            },
        }
    }

    /// The items the collector refused in a 200's `partial_success` (0 when none, or when the
    /// body does not decode: a collector's success is taken at its word).
    fn rejected_in(&self, protocol: OtlpProtocol, body: &[u8]) -> u64 {
        if body.is_empty() {
            return 0;
        }
        let rejected = match (self, protocol) {
            (Export::Traces(_), OtlpProtocol::HttpProtobuf) => {
                ExportTraceServiceResponse::decode(body)
                    .ok()
                    .and_then(|response| response.partial_success)
                    .map(|partial| partial.rejected_spans)
            }
            (Export::Traces(_), _) => serde_json::from_slice::<ExportTraceServiceResponse>(body)
                .ok()
                .and_then(|response| response.partial_success)
                .map(|partial| partial.rejected_spans),
            (Export::Logs(_), OtlpProtocol::HttpProtobuf) => {
                ExportLogsServiceResponse::decode(body)
                    .ok()
                    .and_then(|response| response.partial_success)
                    .map(|partial| partial.rejected_log_records)
            }
            (Export::Logs(_), _) => serde_json::from_slice::<ExportLogsServiceResponse>(body)
                .ok()
                .and_then(|response| response.partial_success)
                .map(|partial| partial.rejected_log_records),
            (Export::Metrics(_), OtlpProtocol::HttpProtobuf) => {
                ExportMetricsServiceResponse::decode(body)
                    .ok()
                    .and_then(|response| response.partial_success)
                    .map(|partial| partial.rejected_data_points)
            }
            (Export::Metrics(_), _) => serde_json::from_slice::<ExportMetricsServiceResponse>(body)
                .ok()
                .and_then(|response| response.partial_success)
                .map(|partial| partial.rejected_data_points),
        };
        rejected
            .and_then(|count| u64::try_from(count).ok())
            .unwrap_or(0)
    }
}

/// How one send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The collector took it (200), refusing `rejected` items in a `partial_success`.
    Delivered {
        /// Items refused by the collector.
        rejected: u64,
    },
    /// A status that is not retried (400, 401, 413...): every item counted `rejected`.
    Refused,
    /// Retries ran out, the time bound passed, or the exporter is giving up (close timed out):
    /// every item counted `failed`.
    GaveUp,
}

/// The exporter's HTTP side: its agent, URLs, headers and counters.
pub struct Transport {
    agent: Agent,
    protocol: OtlpProtocol,
    gzip: bool,
    headers: Vec<(String, String)>,
    traces_url: String,
    metrics_url: String,
    logs_url: String,
    counters: Arc<OtlpCounters>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Transport")
            .field("protocol", &self.protocol)
            .field("traces_url", &self.traces_url)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// A transport for `options`, counting into `counters`.
    pub fn new(options: &OtlpOptions, counters: Arc<OtlpCounters>) -> Transport {
        let base = options.endpoint.trim_end_matches('/');
        let url = |given: &Option<String>, path: &str| {
            given
                .as_deref()
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map_or_else(|| format!("{base}{path}"), str::to_string)
        };
        Transport {
            agent: build_agent(options.timeout),
            protocol: options.protocol,
            gzip: options.gzip,
            headers: options.headers.clone(),
            traces_url: url(&options.traces_endpoint, "/v1/traces"),
            metrics_url: url(&options.metrics_endpoint, "/v1/metrics"),
            logs_url: url(&options.logs_endpoint, "/v1/logs"),
            counters,
        }
    }

    /// Encodes and sends `export`, retrying as the spec asks until it is delivered, refused,
    /// or given up on (also as soon as `give_up` is set), and counts the outcome.
    pub fn send(&self, export: &Export, give_up: &AtomicBool) -> Delivery {
        let items = export.items();
        let delivery = self.deliver(export, give_up);
        let signal = export.signal();
        match delivery {
            Delivery::Delivered { rejected } => {
                let rejected = rejected.min(items);
                self.counters.exported(signal, items - rejected);
                if rejected > 0 {
                    self.counters.rejected(rejected);
                }
            }
            Delivery::Refused => self.counters.rejected(items),
            Delivery::GaveUp => self.counters.failed(items),
        }
        delivery
    }

    fn deliver(&self, export: &Export, give_up: &AtomicBool) -> Delivery {
        // A message that cannot be encoded never will be: refused, not retried.
        let Ok(body) = export.encode(self.protocol) else {
            return Delivery::Refused;
        };
        let body = if self.gzip {
            match gzip(&body) {
                Some(compressed) => compressed,
                None => return Delivery::Refused,
            }
        } else {
            body
        };
        let url = match export {
            Export::Traces(_) => &self.traces_url,
            Export::Logs(_) => &self.logs_url,
            Export::Metrics(_) => &self.metrics_url,
        };
        let started = Instant::now();
        let mut backoff = INITIAL_BACKOFF;
        let mut retries = 0;
        loop {
            if give_up.load(Ordering::Relaxed) {
                return Delivery::GaveUp;
            }
            let wait = match self.post(url, &body) {
                Attempt::Status(200..=299, response) => {
                    return Delivery::Delivered {
                        rejected: export.rejected_in(self.protocol, &response),
                    };
                }
                Attempt::Retryable(retry_after) => retry_after,
                Attempt::Status(..) => return Delivery::Refused,
            };
            if retries >= MAX_RETRIES {
                return Delivery::GaveUp;
            }
            let wait = wait.unwrap_or_else(|| jittered(backoff));
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if started.elapsed() + wait > MAX_RETRY_ELAPSED || !sleep(wait, give_up) {
                return Delivery::GaveUp;
            }
            retries += 1;
            self.counters.retried();
        }
    }

    fn post(&self, url: &str, body: &[u8]) -> Attempt {
        let mut request = self.agent.post(url).header(
            "content-type",
            match self.protocol {
                OtlpProtocol::HttpProtobuf => "application/x-protobuf",
                OtlpProtocol::HttpJson => "application/json",
            },
        );
        if self.gzip {
            request = request.header("content-encoding", "gzip");
        }
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let mut response = match request.send(body) {
            Ok(response) => response,
            // A header the http crate refuses will be refused on every try.
            Err(ureq::Error::Http(_)) => return Attempt::Status(0, Vec::new()),
            // Connection refused or reset, DNS, timeouts: the collector may come back.
            Err(_) => return Attempt::Retryable(None),
        };
        let status = response.status().as_u16();
        match status {
            429 | 502 | 503 | 504 => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                Attempt::Retryable(retry_after)
            }
            _ => {
                let mut bytes = Vec::new();
                if (200..300).contains(&status) {
                    // A body that cannot be read still came with a success.
                    let _ = response
                        .body_mut()
                        .as_reader()
                        .take(MAX_RESPONSE_BYTES)
                        .read_to_end(&mut bytes);
                }
                Attempt::Status(status, bytes)
            }
        }
    }
}

/// What one POST came to.
enum Attempt {
    /// A final status with the (success) body.
    Status(u16, Vec<u8>),
    /// Worth retrying, after `Retry-After` when the collector gave one.
    Retryable(Option<Duration>),
}

/// The exporter's own agent: statuses are answers (not errors), no proxy from the environment,
/// no redirects (a POST must not land somewhere unconfigured), `timeout` for a whole request.
fn build_agent(timeout: Duration) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .user_agent(USER_AGENT)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(timeout))
        .build()
        .new_agent()
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    encoder.write_all(body).ok()?;
    encoder.finish().ok()
}

/// `base` scaled by a random factor in [0.5, 1.5), so exporters that failed together do not
/// retry together.
fn jittered(base: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // A fresh RandomState is seeded from the OS once per thread and then varied per call:
    // enough randomness for jitter without a dependency.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = (random % 1000) as f64 / 1000.0;
    base.mul_f64(0.5 + fraction)
}

/// Sleeps `wait` in slices; false when `give_up` was set meanwhile.
fn sleep(wait: Duration, give_up: &AtomicBool) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        if give_up.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(SLEEP_SLICE));
    }
}
