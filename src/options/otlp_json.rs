//! The `otlp` key of the engine options JSON (the C ABI's `pc_engine_open`, the gem's
//! `PromptConfig.configure(otlp: ...)`): `false`/`null` (no export), `true` (from the standard
//! `OTEL_*` environment variables, as [`OtlpOptions::from_env`] reads them), or an object
//! naming the settings itself. Every refusal names its JSON pointer (`/otlp/...`) and never
//! quotes a header value, which is a secret (a collector's API key).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::ConfigError;
use crate::telemetry::TelemetryError;
use crate::telemetry::otlp::{OtlpOptions, OtlpProtocol};

/// The collector the object form exports to when it names no `endpoint`: the OTLP/HTTP
/// default (<https://opentelemetry.io/docs/specs/otel/protocol/exporter/>).
const DEFAULT_ENDPOINT: &str = "http://localhost:4318";

/// The keys of the object form, in the order the error lists them.
const KEYS: &[&str] = &[
    "endpoint",
    "traces_endpoint",
    "metrics_endpoint",
    "logs_endpoint",
    "protocol",
    "headers",
    "service_name",
    "resource_attributes",
    "compression",
    "timeout_ms",
    "batch_delay_ms",
    "max_queue",
    "max_batch",
    "metrics_interval_ms",
];

/// The exporter settings `value` (the `otlp` key) asks for: `None` for `false` or `null`.
///
/// `true` reads the `OTEL_*` variables as the CLI does ([`OtlpOptions::from_env`]): no export
/// when they name no endpoint.
///
/// The object form is `{"endpoint": "http://collector:4318", "traces_endpoint",
/// "metrics_endpoint", "logs_endpoint" (full URLs used as given), "protocol": "http/protobuf" |
/// "http/json", "headers": {"name": "value"}, "service_name": "...", "resource_attributes":
/// {"key": "value"}, "compression": "gzip" | "none", "timeout_ms", "batch_delay_ms",
/// "max_queue", "max_batch", "metrics_interval_ms"}`, every key optional (the defaults of
/// [`OtlpOptions::new`], endpoint `http://localhost:4318`).
pub(super) fn parse(value: &Value) -> Result<Option<OtlpOptions>, ConfigError> {
    match value {
        Value::Null | Value::Bool(false) => Ok(None),
        Value::Bool(true) => from_environment(|name| std::env::var(name).ok()),
        Value::Object(object) => parse_object(object).map(Some),
        other => Err(rejected(
            "/otlp",
            format!(
                "must be true (the OTEL_* environment variables), false, or an object of \
                 settings, got {}",
                type_name(other)
            ),
        )),
    }
}

/// `true`: the settings of the `OTEL_*` variables `lookup` reads; `None` (no export) when they
/// name no endpoint or disable the SDK, as for the CLI. A bad variable is refused at `/otlp`,
/// naming the variable, never its value.
fn from_environment(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<OtlpOptions>, ConfigError> {
    OtlpOptions::from_env(lookup).map_err(|error| match error {
        TelemetryError::InvalidSettings { setting, message } => rejected(
            "/otlp",
            format!("true reads the OTEL_* environment variables, and {setting}: {message}"),
        ),
        other => rejected("/otlp", other),
    })
}

fn parse_object(object: &Map<String, Value>) -> Result<OtlpOptions, ConfigError> {
    if let Some(unknown) = object.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(rejected(
            &pointer(unknown),
            format!("unknown key; the keys are {}", KEYS.join(", ")),
        ));
    }
    let endpoint = match object.get("endpoint") {
        None => DEFAULT_ENDPOINT.to_string(),
        Some(value) => endpoint(value)?,
    };
    let mut options = OtlpOptions::new(endpoint);
    for (key, field) in [
        ("traces_endpoint", &mut options.traces_endpoint),
        ("metrics_endpoint", &mut options.metrics_endpoint),
        ("logs_endpoint", &mut options.logs_endpoint),
    ] {
        if let Some(value) = object.get(key) {
            *field = Some(signal_endpoint(value, key)?);
        }
    }
    if let Some(value) = object.get("protocol") {
        options.protocol = match value.as_str() {
            Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
            Some("http/json") => OtlpProtocol::HttpJson,
            _ => {
                return Err(rejected(
                    "/otlp/protocol",
                    "must be \"http/protobuf\" or \"http/json\" (gRPC is not supported)",
                ));
            }
        };
    }
    if let Some(value) = object.get("headers") {
        options.headers = headers(value)?;
    }
    if let Some(value) = object.get("service_name") {
        options.service_name = match value.as_str() {
            Some(name) if !name.trim().is_empty() => name.to_string(),
            _ => return Err(rejected("/otlp/service_name", "must be a non-empty string")),
        };
    }
    if let Some(value) = object.get("resource_attributes") {
        options.resource_attributes = resource_attributes(value)?;
    }
    if let Some(value) = object.get("compression") {
        options.gzip = match value.as_str() {
            Some("gzip") => true,
            Some("none") => false,
            _ => {
                return Err(rejected(
                    "/otlp/compression",
                    "must be \"gzip\" or \"none\"",
                ));
            }
        };
    }
    if let Some(value) = object.get("timeout_ms") {
        options.timeout = Duration::from_millis(positive(value, "timeout_ms")?);
    }
    if let Some(value) = object.get("batch_delay_ms") {
        options.batch_delay = Duration::from_millis(positive(value, "batch_delay_ms")?);
    }
    if let Some(value) = object.get("metrics_interval_ms") {
        options.metrics_interval = Duration::from_millis(positive(value, "metrics_interval_ms")?);
    }
    if let Some(value) = object.get("max_queue") {
        options.max_queue = count(value, "max_queue")?;
    }
    if let Some(value) = object.get("max_batch") {
        options.max_batch = count(value, "max_batch")?;
    }
    // The batch span processor's rule: a batch is taken from the queue, so it cannot be larger.
    if options.max_batch > options.max_queue {
        return Err(rejected(
            "/otlp/max_batch",
            format!(
                "must not exceed max_queue ({}), got {}",
                options.max_queue, options.max_batch
            ),
        ));
    }
    Ok(options)
}

/// An `http://` or `https://` base URL, without a trailing slash.
fn endpoint(value: &Value) -> Result<String, ConfigError> {
    let text = value.as_str().map(str::trim).unwrap_or_default();
    if !is_http_url(text) {
        return Err(rejected(
            "/otlp/endpoint",
            "must be an http:// or https:// base URL such as http://collector:4318 (the \
             /v1/traces, /v1/metrics and /v1/logs paths are appended)",
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// A per-signal URL, used as given (no path appended): `http://` or `https://` with a host.
fn signal_endpoint(value: &Value, key: &str) -> Result<String, ConfigError> {
    let text = value.as_str().map(str::trim).unwrap_or_default();
    if !is_http_url(text) {
        return Err(rejected(
            &format!("/otlp/{key}"),
            "must be a full http:// or https:// URL such as http://collector:4318/v1/traces \
             (used as given)",
        ));
    }
    Ok(text.to_string())
}

/// Whether `text` is an `http://` or `https://` URL with a host and no whitespace.
fn is_http_url(text: &str) -> bool {
    let has_host = ["http://", "https://"]
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    has_host && !text.chars().any(char::is_whitespace)
}

/// `{"name": "value"}`: HTTP header names (RFC 9110 tokens) and values without control
/// characters. Values are secrets: never quoted.
fn headers(value: &Value) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(object) = value.as_object() else {
        return Err(rejected(
            "/otlp/headers",
            "must be an object of header names to string values",
        ));
    };
    let mut headers = Vec::with_capacity(object.len());
    for (name, value) in object {
        let at = format!("/otlp/headers/{}", escape(name));
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(rejected(&at, "is not a valid HTTP header name"));
        }
        let Some(text) = value.as_str() else {
            return Err(rejected(&at, "must be a string (the value is not shown)"));
        };
        if text.chars().any(|c| c.is_control() && c != '\t') {
            return Err(rejected(
                &at,
                "holds a control character (the value is not shown)",
            ));
        }
        headers.push((name.clone(), text.to_string()));
    }
    Ok(headers)
}

/// `{"key": "value"}`: string, number or boolean values, kept as their text (as
/// `OTEL_RESOURCE_ATTRIBUTES` gives them).
fn resource_attributes(value: &Value) -> Result<Vec<(String, String)>, ConfigError> {
    let Some(object) = value.as_object() else {
        return Err(rejected(
            "/otlp/resource_attributes",
            "must be an object of attribute keys to values",
        ));
    };
    let mut attributes = Vec::with_capacity(object.len());
    for (key, value) in object {
        let at = format!("/otlp/resource_attributes/{}", escape(key));
        if key.trim().is_empty() {
            return Err(rejected(&at, "an attribute key must not be empty"));
        }
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            other => {
                return Err(rejected(
                    &at,
                    format!(
                        "must be a string, number or boolean, got {}",
                        type_name(other)
                    ),
                ));
            }
        };
        attributes.push((key.clone(), text));
    }
    Ok(attributes)
}

/// A whole number of milliseconds above zero.
fn positive(value: &Value, key: &str) -> Result<u64, ConfigError> {
    match value.as_u64() {
        Some(number) if number > 0 => Ok(number),
        _ => Err(rejected(
            &format!("/otlp/{key}"),
            format!("must be a whole number of milliseconds above 0, got {value}"),
        )),
    }
}

/// A whole count above zero.
fn count(value: &Value, key: &str) -> Result<usize, ConfigError> {
    match value
        .as_u64()
        .and_then(|number| usize::try_from(number).ok())
    {
        Some(number) if number > 0 => Ok(number),
        _ => Err(rejected(
            &format!("/otlp/{key}"),
            format!("must be a whole number above 0, got {value}"),
        )),
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// A JSON pointer reference token (RFC 6901: `~` as `~0`, `/` as `~1`).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn pointer(key: &str) -> String {
    format!("/otlp/{}", escape(key))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn rejected(pointer: &str, message: impl ToString) -> ConfigError {
    ConfigError::Rejected {
        file: "engine options".into(),
        pointer: pointer.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::telemetry::otlp::OtlpProtocol;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn refusal(value: Value) -> String {
        parse(&value).unwrap_err().to_string()
    }

    #[test]
    fn false_and_null_export_nothing() {
        assert!(parse(&json!(false)).unwrap().is_none());
        assert!(parse(&Value::Null).unwrap().is_none());
    }

    #[test]
    fn an_object_names_every_setting() {
        let options = parse(&json!({
            "endpoint": "https://collector.example:4318/",
            "protocol": "http/json",
            "headers": {"x-honeycomb-team": "secret-key"},
            "service_name": "rails-app",
            "resource_attributes": {"deployment.environment": "prod", "shard": 3},
            "compression": "none",
            "timeout_ms": 2500,
            "batch_delay_ms": 200,
            "max_queue": 100,
            "max_batch": 10,
            "metrics_interval_ms": 15000
        }))
        .unwrap()
        .unwrap();
        assert_eq!(options.endpoint, "https://collector.example:4318");
        assert_eq!(options.protocol, OtlpProtocol::HttpJson);
        assert_eq!(
            options.headers,
            vec![("x-honeycomb-team".to_string(), "secret-key".to_string())]
        );
        assert_eq!(options.service_name, "rails-app");
        assert_eq!(
            options.resource_attributes,
            vec![
                ("deployment.environment".to_string(), "prod".to_string()),
                ("shard".to_string(), "3".to_string())
            ]
        );
        assert!(!options.gzip);
        assert_eq!(options.timeout.as_millis(), 2500);
        assert_eq!(options.batch_delay.as_millis(), 200);
        assert_eq!((options.max_queue, options.max_batch), (100, 10));
        assert_eq!(options.metrics_interval.as_secs(), 15);
    }

    #[test]
    fn true_reads_the_otel_environment_variables() {
        let lookup = |name: &str| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_string()),
            "OTEL_SERVICE_NAME" => Some("rails-app".to_string()),
            _ => None,
        };
        let options = super::from_environment(lookup).unwrap().unwrap();
        assert_eq!(options.endpoint, "http://collector:4318");
        assert_eq!(options.service_name, "rails-app");
    }

    #[test]
    fn true_without_an_endpoint_in_the_environment_exports_nothing() {
        assert!(super::from_environment(|_| None).unwrap().is_none());
    }

    #[test]
    fn true_with_a_bad_variable_names_it_at_otlp_without_its_value() {
        let lookup = |name: &str| match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://collector:4318".to_string()),
            "OTEL_EXPORTER_OTLP_HEADERS" => Some("x-api-key".to_string()),
            _ => None,
        };
        let text = super::from_environment(lookup).unwrap_err().to_string();
        assert!(text.starts_with("engine options: /otlp: "), "{text}");
        assert!(text.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{text}");
    }

    #[test]
    fn per_signal_endpoints_are_used_as_given() {
        let options = parse(&json!({"traces_endpoint": "https://t.example/v1/traces"}))
            .unwrap()
            .unwrap();
        assert_eq!(
            options.traces_endpoint.as_deref(),
            Some("https://t.example/v1/traces")
        );
        assert!(options.metrics_endpoint.is_none());
        let text = refusal(json!({"logs_endpoint": "/v1/logs"}));
        assert!(text.contains("/otlp/logs_endpoint: "), "{text}");
    }

    #[test]
    fn an_empty_object_exports_to_the_default_collector_with_the_defaults() {
        let options = parse(&json!({})).unwrap().unwrap();
        assert_eq!(options.endpoint, "http://localhost:4318");
        assert_eq!(options.protocol, OtlpProtocol::HttpProtobuf);
        assert!(options.gzip && options.headers.is_empty());
    }

    #[test]
    fn an_unknown_key_is_refused_naming_its_pointer() {
        let text = refusal(json!({"endpoint": "http://c:4318", "endpiont": "x"}));
        assert!(text.contains("/otlp/endpiont"), "{text}");
        assert!(text.contains("unknown key"), "{text}");
    }

    #[test]
    fn each_bad_setting_names_its_pointer() {
        for (value, at) in [
            (json!("http://c:4318"), "/otlp"),
            (json!({"endpoint": "collector:4318"}), "/otlp/endpoint"),
            (json!({"endpoint": "http://"}), "/otlp/endpoint"),
            (json!({"protocol": "grpc"}), "/otlp/protocol"),
            (json!({"headers": ["a"]}), "/otlp/headers"),
            (
                json!({"headers": {"bad name": "v"}}),
                "/otlp/headers/bad name",
            ),
            (json!({"service_name": ""}), "/otlp/service_name"),
            (
                json!({"resource_attributes": {"a": [1]}}),
                "/otlp/resource_attributes/a",
            ),
            (json!({"compression": "zstd"}), "/otlp/compression"),
            (json!({"timeout_ms": 0}), "/otlp/timeout_ms"),
            (json!({"batch_delay_ms": -1}), "/otlp/batch_delay_ms"),
            (json!({"max_queue": 1.5}), "/otlp/max_queue"),
            (json!({"max_queue": 4, "max_batch": 8}), "/otlp/max_batch"),
        ] {
            let text = refusal(value.clone());
            assert!(text.contains(&format!("{at}: ")), "{value}: {text}");
        }
    }

    #[test]
    fn a_bad_header_value_is_named_but_never_quoted() {
        let text = refusal(json!({"headers": {"authorization": "Bearer sk-SECRET\n"}}));
        assert!(text.contains("/otlp/headers/authorization"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    /// Any JSON value (nested, empty, NUL bytes, non-ASCII, huge numbers).
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            "[\u{0}\n\t a-z/~é]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        prop::sample::select(super::KEYS).prop_map(str::to_string),
                        "\\PC{0,8}",
                    ],
                    inner,
                    0..5
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_value_is_read_or_refused_naming_a_pointer_under_otlp(value in any_json()) {
            // `true` reads the process environment: its own test covers it.
            prop_assume!(value != Value::Bool(true));
            match parse(&value) {
                Ok(_) => {}
                Err(error) => {
                    let text = error.to_string();
                    prop_assert!(text.starts_with("engine options: /otlp"), "{}", text);
                }
            }
        }
    }
}
