//! How the OTLP exporter is set up: in code ([`OtlpOptions`]) or from the standard
//! `OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` variables
//! (<https://opentelemetry.io/docs/specs/otel/protocol/exporter/>).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::telemetry::metrics::OtlpSnapshot;

/// The OTLP/HTTP encoding (`OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// `http/protobuf`, the default: binary protobuf, `Content-Type: application/x-protobuf`.
    #[default]
    HttpProtobuf,
    /// `http/json`: the OTLP JSON mapping (hex ids, camelCase), `Content-Type:
    /// application/json`.
    HttpJson,
}

impl OtlpProtocol {
    /// `http/protobuf` or `http/json`, as the environment variable spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::HttpProtobuf => "http/protobuf",
            OtlpProtocol::HttpJson => "http/json",
        }
    }
}

/// Where and how spans, metrics and logs are exported. Header values are secrets (API keys of
/// Honeycomb, Datadog, Grafana Cloud...): `Debug` shows their names only.
#[derive(Clone)]
#[non_exhaustive]
pub struct OtlpOptions {
    /// The collector's base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`, default
    /// `http://localhost:4318`); `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended.
    pub endpoint: String,
    /// Where spans go when not `{endpoint}/v1/traces` (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// used as given: no path is appended).
    pub traces_endpoint: Option<String>,
    /// Where metrics go when not `{endpoint}/v1/metrics`
    /// (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, used as given).
    pub metrics_endpoint: Option<String>,
    /// Where log records go when not `{endpoint}/v1/logs` (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`,
    /// used as given).
    pub logs_endpoint: Option<String>,
    /// The encoding; protobuf by default.
    pub protocol: OtlpProtocol,
    /// Extra request headers (`OTEL_EXPORTER_OTLP_HEADERS`: `key=value,key2=value2`,
    /// values percent-decoded).
    pub headers: Vec<(String, String)>,
    /// `service.name` of the resource (`OTEL_SERVICE_NAME`; default `prompt_config`, or the
    /// `service.name` of `OTEL_RESOURCE_ATTRIBUTES`).
    pub service_name: String,
    /// More resource attributes (`OTEL_RESOURCE_ATTRIBUTES`: `key=value,...`).
    pub resource_attributes: Vec<(String, String)>,
    /// Gzip request bodies (`OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip`, the default here, or
    /// `none`).
    pub gzip: bool,
    /// How long one export request may take (`OTEL_EXPORTER_OTLP_TIMEOUT`, ms; 10 s).
    pub timeout: Duration,
    /// How long a record may wait for its batch (`OTEL_BSP_SCHEDULE_DELAY`, ms; 1 s).
    pub batch_delay: Duration,
    /// Records held at most while waiting for export (`OTEL_BSP_MAX_QUEUE_SIZE`; 2048); more
    /// are dropped and counted.
    pub max_queue: usize,
    /// Spans or log records per export request at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`; 512).
    pub max_batch: usize,
    /// How often metrics are exported (`OTEL_METRIC_EXPORT_INTERVAL`, ms; 60 s), and once more
    /// at close.
    pub metrics_interval: Duration,
    /// Told once when the exporter closes (see [`OtlpCloseListener`]); `None` by default. The
    /// CLI warns on stderr with it when a collector did not take everything.
    pub on_close: Option<OtlpCloseListener>,
}

/// Called once as the exporter closes, on the closing thread, with its delivery counts so far
/// and whether the close gave up waiting (the collector slow or down: what was still queued
/// or being retried is then dropped and counted `failed` after this call).
pub type OtlpCloseListener = Arc<dyn Fn(&OtlpSnapshot, bool) + Send + Sync>;

impl OtlpOptions {
    /// Export to `endpoint` (a base URL such as `http://collector:4318`) with the defaults.
    pub fn new(endpoint: impl Into<String>) -> OtlpOptions {
        OtlpOptions {
            endpoint: endpoint.into(),
            traces_endpoint: None,
            metrics_endpoint: None,
            logs_endpoint: None,
            protocol: OtlpProtocol::HttpProtobuf,
            headers: Vec::new(),
            service_name: "prompt_config".to_string(),
            resource_attributes: Vec::new(),
            gzip: true,
            timeout: Duration::from_secs(10),
            batch_delay: Duration::from_secs(1),
            max_queue: 2048,
            max_batch: 512,
            metrics_interval: Duration::from_secs(60),
            on_close: None,
        }
    }
}

/// `url` with the password of its userinfo (`http://user:secret@collector:4318`, which ureq
/// sends as HTTP Basic authentication) shown as `***`.
fn masked(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

impl fmt::Debug for OtlpOptions {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        formatter
            .debug_struct("OtlpOptions")
            .field("endpoint", &masked(&self.endpoint))
            .field(
                "traces_endpoint",
                &self.traces_endpoint.as_deref().map(masked),
            )
            .field(
                "metrics_endpoint",
                &self.metrics_endpoint.as_deref().map(masked),
            )
            .field("logs_endpoint", &self.logs_endpoint.as_deref().map(masked))
            .field("protocol", &self.protocol)
            .field("headers", &header_names)
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("batch_delay", &self.batch_delay)
            .field("max_queue", &self.max_queue)
            .field("max_batch", &self.max_batch)
            .field("metrics_interval", &self.metrics_interval)
            .field("on_close", &self.on_close.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::OtlpOptions;

    #[test]
    fn debug_masks_an_endpoint_password_and_header_values() {
        let mut options = OtlpOptions::new("http://user:pa55-SECRET@collector:4318");
        options.traces_endpoint = Some("https://u:SECRET-2@traces:4318/v1/traces".into());
        options.headers = vec![("x-api-key".into(), "SECRET-3".into())];
        let debug = format!("{options:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("http://user:***@collector:4318"), "{debug}");
        assert!(debug.contains("x-api-key"), "{debug}");
    }
}
