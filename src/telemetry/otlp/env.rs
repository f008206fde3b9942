//! [`OtlpOptions::from_env`]: the exporter's settings from the standard OpenTelemetry
//! environment variables (<https://opentelemetry.io/docs/specs/otel/protocol/exporter/>,
//! <https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>), and the
//! W3C-baggage-like `key=value,key2=value2` lists of `OTEL_EXPORTER_OTLP_HEADERS` and
//! `OTEL_RESOURCE_ATTRIBUTES`. A bad value is an [`TelemetryError::InvalidSettings`] naming the
//! variable and what is wrong, never the value (headers carry API keys).

use std::fmt;
use std::time::Duration;

use super::{OtlpOptions, OtlpProtocol};
use crate::telemetry::TelemetryError;

/// The base endpoint when only per-signal endpoints are set: the OTLP/HTTP default.
const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

/// Why a `key=value,...` list could not be read; says where, never what the value was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyValueError {
    /// Entry `index` (counting from 1) has no `=`.
    MissingEquals { index: usize },
    /// Entry `index` has an empty key.
    EmptyKey { index: usize },
    /// Entry `index` has a key that is not an HTTP token (RFC 9110 `tchar`s).
    InvalidKey { index: usize },
    /// Entry `index` has a `%` not followed by two hex digits.
    InvalidPercentEncoding { index: usize },
    /// Entry `index` decodes to bytes that are not UTF-8.
    NotUtf8 { index: usize },
    /// Entry `index` decodes to a control character (NUL, CR, LF...), which no header may hold.
    ControlCharacter { index: usize },
}

impl fmt::Display for KeyValueError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyValueError::MissingEquals { index } => {
                write!(formatter, "entry {index} is not key=value")
            }
            KeyValueError::EmptyKey { index } => {
                write!(formatter, "entry {index} has an empty key")
            }
            KeyValueError::InvalidKey { index } => write!(
                formatter,
                "entry {index} has a key with characters a header name cannot hold"
            ),
            KeyValueError::InvalidPercentEncoding { index } => write!(
                formatter,
                "entry {index} has a '%' not followed by two hex digits"
            ),
            KeyValueError::NotUtf8 { index } => {
                write!(formatter, "entry {index} does not percent-decode to UTF-8")
            }
            KeyValueError::ControlCharacter { index } => {
                write!(formatter, "entry {index} holds a control character")
            }
        }
    }
}

/// What a list's keys and values must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyValueKind {
    /// HTTP headers: keys are tokens, values hold no control characters.
    Headers,
    /// Resource attributes: any non-empty key without control characters, any value.
    Attributes,
}

/// Parses `key=value,key2=value2` (the W3C Baggage list form the OTel spec uses for
/// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES`): entries split on `,`, key and
/// value trimmed of spaces and tabs, the value percent-decoded; empty entries are skipped.
pub(crate) fn parse_key_values(
    text: &str,
    kind: KeyValueKind,
) -> Result<Vec<(String, String)>, KeyValueError> {
    let mut pairs = Vec::new();
    for (position, entry) in text.split(',').enumerate() {
        let index = position + 1;
        let entry = entry.trim_matches([' ', '\t']);
        if entry.is_empty() {
            continue;
        }
        let (key, value) = entry
            .split_once('=')
            .ok_or(KeyValueError::MissingEquals { index })?;
        let key = key.trim_matches([' ', '\t']);
        if key.is_empty() {
            return Err(KeyValueError::EmptyKey { index });
        }
        let key = percent_decode(key, index)?;
        let value = percent_decode(value.trim_matches([' ', '\t']), index)?;
        match kind {
            KeyValueKind::Headers => {
                if !key.bytes().all(is_token_byte) {
                    return Err(KeyValueError::InvalidKey { index });
                }
                if value
                    .chars()
                    .any(|character| character.is_control() && character != '\t')
                {
                    return Err(KeyValueError::ControlCharacter { index });
                }
            }
            KeyValueKind::Attributes => {
                if key.is_empty() {
                    return Err(KeyValueError::EmptyKey { index });
                }
                if key.chars().any(char::is_control) {
                    return Err(KeyValueError::ControlCharacter { index });
                }
            }
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// RFC 9110 `tchar`: what a header name may be made of.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// `%XX` sequences to bytes, the result as UTF-8.
fn percent_decode(text: &str, index: usize) -> Result<String, KeyValueError> {
    if !text.contains('%') {
        return Ok(text.to_string());
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'%' {
            let high = bytes.get(position + 1).and_then(|byte| hex_value(*byte));
            let low = bytes.get(position + 2).and_then(|byte| hex_value(*byte));
            match (high, low) {
                (Some(high), Some(low)) => decoded.push(high << 4 | low),
                _ => return Err(KeyValueError::InvalidPercentEncoding { index }),
            }
            position += 3;
        } else {
            decoded.push(bytes[position]);
            position += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| KeyValueError::NotUtf8 { index })
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

impl OtlpOptions {
    /// The exporter's settings from the OpenTelemetry environment variables, read through
    /// `lookup` (`|name| std::env::var(name).ok()` for the process environment); an empty
    /// value counts as unset, as the OTel spec says.
    ///
    /// `None` when no endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT`, or a per-signal
    /// `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`, which is used as given) or when
    /// `OTEL_SDK_DISABLED=true`. Also read: `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`,
    /// the default, or `http/json`; `grpc` is refused: this exporter speaks OTLP/HTTP only),
    /// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` (ms),
    /// `OTEL_EXPORTER_OTLP_COMPRESSION` (`gzip` or `none`), `OTEL_SERVICE_NAME`,
    /// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_SCHEDULE_DELAY` (ms), `OTEL_BSP_MAX_QUEUE_SIZE`,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` and `OTEL_METRIC_EXPORT_INTERVAL` (ms).
    ///
    /// # Errors
    /// [`TelemetryError::InvalidSettings`] naming the first variable whose value cannot be
    /// used (the value itself is never in the message).
    pub fn from_env(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OtlpOptions>, TelemetryError> {
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        if get("OTEL_SDK_DISABLED").is_some_and(|value| value.trim().eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        let traces = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let metrics = get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
        let logs = get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT");
        if endpoint.is_none() && traces.is_none() && metrics.is_none() && logs.is_none() {
            return Ok(None);
        }
        let url = |name: &str, value: Option<String>| -> Result<Option<String>, TelemetryError> {
            value
                .map(|value| checked_url(name, value.trim()))
                .transpose()
        };
        let mut options = OtlpOptions::new(
            url("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)?
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
        );
        options.traces_endpoint = url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces)?;
        options.metrics_endpoint = url("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", metrics)?;
        options.logs_endpoint = url("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", logs)?;
        if let Some(protocol) = get("OTEL_EXPORTER_OTLP_PROTOCOL") {
            options.protocol = parse_protocol("OTEL_EXPORTER_OTLP_PROTOCOL", &protocol)?;
        }
        if let Some(headers) = get("OTEL_EXPORTER_OTLP_HEADERS") {
            options.headers = parse_key_values(&headers, KeyValueKind::Headers)
                .map_err(|error| invalid("OTEL_EXPORTER_OTLP_HEADERS", error.to_string()))?;
        }
        if let Some(timeout) = get("OTEL_EXPORTER_OTLP_TIMEOUT") {
            options.timeout = milliseconds("OTEL_EXPORTER_OTLP_TIMEOUT", &timeout)?;
            if options.timeout.is_zero() {
                // A request given no time at all never reaches the collector.
                return Err(invalid(
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                    "must be a positive number of milliseconds",
                ));
            }
        }
        if let Some(compression) = get("OTEL_EXPORTER_OTLP_COMPRESSION") {
            options.gzip = match compression.trim().to_ascii_lowercase().as_str() {
                "gzip" => true,
                "none" => false,
                _ => {
                    return Err(invalid(
                        "OTEL_EXPORTER_OTLP_COMPRESSION",
                        "must be gzip or none",
                    ));
                }
            };
        }
        if let Some(attributes) = get("OTEL_RESOURCE_ATTRIBUTES") {
            let mut attributes = parse_key_values(&attributes, KeyValueKind::Attributes)
                .map_err(|error| invalid("OTEL_RESOURCE_ATTRIBUTES", error.to_string()))?;
            // `service.name` lives in its own field; OTEL_SERVICE_NAME below wins over it.
            if let Some(position) = attributes
                .iter()
                .rposition(|(key, _)| key == "service.name")
            {
                options.service_name = attributes[position].1.clone();
            }
            attributes.retain(|(key, _)| key != "service.name");
            options.resource_attributes = attributes;
        }
        if let Some(service) = get("OTEL_SERVICE_NAME") {
            options.service_name = service.trim().to_string();
        }
        if let Some(delay) = get("OTEL_BSP_SCHEDULE_DELAY") {
            options.batch_delay = milliseconds("OTEL_BSP_SCHEDULE_DELAY", &delay)?;
        }
        if let Some(size) = get("OTEL_BSP_MAX_QUEUE_SIZE") {
            options.max_queue = positive("OTEL_BSP_MAX_QUEUE_SIZE", &size)?;
        }
        if let Some(size) = get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE") {
            options.max_batch = positive("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &size)?;
        }
        // The spec: a batch larger than the queue is the queue.
        options.max_batch = options.max_batch.min(options.max_queue);
        if let Some(interval) = get("OTEL_METRIC_EXPORT_INTERVAL") {
            options.metrics_interval = milliseconds("OTEL_METRIC_EXPORT_INTERVAL", &interval)?;
            if options.metrics_interval.is_zero() {
                return Err(invalid(
                    "OTEL_METRIC_EXPORT_INTERVAL",
                    "must be a positive number of milliseconds",
                ));
            }
        }
        Ok(Some(options))
    }
}

/// `http/protobuf` or `http/json`; `grpc` is refused with the reason.
pub(crate) fn parse_protocol(setting: &str, value: &str) -> Result<OtlpProtocol, TelemetryError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
        "http/json" => Ok(OtlpProtocol::HttpJson),
        "grpc" => Err(invalid(
            setting,
            "grpc is not supported: prompt_config exports over OTLP/HTTP only; use \
             http/protobuf (the collector's port 4318) or http/json",
        )),
        _ => Err(invalid(setting, "must be http/protobuf or http/json")),
    }
}

/// An `http://` or `https://` URL with a host, without its trailing slash.
pub(crate) fn checked_url(setting: &str, value: &str) -> Result<String, TelemetryError> {
    let parsed = url::Url::parse(value)
        .map_err(|_| invalid(setting, "must be an http:// or https:// URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid(setting, "must be an http:// or https:// URL"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

fn milliseconds(setting: &str, value: &str) -> Result<Duration, TelemetryError> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid(setting, "must be a whole number of milliseconds"))
}

fn positive(setting: &str, value: &str) -> Result<usize, TelemetryError> {
    value
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|size| *size > 0)
        .ok_or_else(|| invalid(setting, "must be a positive whole number"))
}

fn invalid(setting: &str, message: impl Into<String>) -> TelemetryError {
    TelemetryError::InvalidSettings {
        setting: setting.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_percent_decoded_and_trimmed() {
        assert_eq!(
            parse_key_values(" api-key = a%20b%2Cc ,x=1,", KeyValueKind::Headers),
            Ok(vec![
                ("api-key".to_string(), "a b,c".to_string()),
                ("x".to_string(), "1".to_string())
            ])
        );
    }

    #[test]
    fn a_zero_timeout_is_refused_naming_the_variable() {
        let error = OtlpOptions::from_env(|name| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://127.0.0.1:4318".into()),
            "OTEL_EXPORTER_OTLP_TIMEOUT" => Some("0".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            TelemetryError::InvalidSettings {
                setting: "OTEL_EXPORTER_OTLP_TIMEOUT".into(),
                message: "must be a positive number of milliseconds".into(),
            }
            .to_string()
        );
    }

    #[test]
    fn a_decoded_newline_in_a_header_is_refused() {
        assert_eq!(
            parse_key_values("a=b%0Ac", KeyValueKind::Headers),
            Err(KeyValueError::ControlCharacter { index: 1 })
        );
    }
}
