//! OTLP export for every command that opens an engine: the standard `OTEL_*` variables
//! (`OtlpOptions::from_env`), with `--otlp-endpoint` / `--otlp-protocol` winning over them, read
//! once before the command runs. A value that cannot be used is a usage error (exit 2) naming
//! the variable or flag, never the value (headers carry API keys). The engine sends its last
//! spans and metrics when the command drops it, so a one-shot `complete` exports before exit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use prompt_config::telemetry::OtlpSnapshot;
use prompt_config::telemetry::otlp::OtlpOptions;
use prompt_config::{EngineOptions, TelemetryError};

use super::Failure;

/// The command's exporter settings, once read (`None`: export off).
static SETTINGS: OnceLock<Option<OtlpOptions>> = OnceLock::new();

/// Reads the `OTEL_*` variables and the flags; call once before the command runs.
pub fn configure(endpoint: Option<&str>, protocol: Option<&str>) -> Result<(), Failure> {
    if let Some((name, _)) = std::env::vars_os().find(|(name, value)| {
        name.to_str().is_some_and(|name| name.starts_with("OTEL_")) && value.to_str().is_none()
    }) {
        return Err(Failure::invalid_argument(format!(
            "{}: must be UTF-8 text (the value is not shown: it may hold an API key)",
            name.to_string_lossy()
        )));
    }
    for (flag, value) in [("--otlp-endpoint", endpoint), ("--otlp-protocol", protocol)] {
        if value.is_some_and(|value| value.trim().is_empty()) {
            // An empty flag is a mistake (an unset shell variable), not a request for the default.
            return Err(Failure::invalid_argument(format!(
                "{flag}: must not be empty"
            )));
        }
    }
    let settings = settings(endpoint, protocol, |name| std::env::var(name).ok())?;
    let _ = SETTINGS.set(settings);
    Ok(())
}

/// The settings of `lookup` (the environment) with the flags put first.
fn settings(
    endpoint: Option<&str>,
    protocol: Option<&str>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<OtlpOptions>, Failure> {
    let flag_for = |setting: &str| match setting {
        "OTEL_EXPORTER_OTLP_ENDPOINT" if endpoint.is_some() => "--otlp-endpoint",
        "OTEL_EXPORTER_OTLP_PROTOCOL" if protocol.is_some() => "--otlp-protocol",
        _ => "",
    };
    let options = OtlpOptions::from_env(|name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" if endpoint.is_some() => endpoint.map(str::to_string),
        "OTEL_EXPORTER_OTLP_PROTOCOL" if protocol.is_some() => protocol.map(str::to_string),
        // An explicit flag turns export on even where the environment disables the SDK.
        "OTEL_SDK_DISABLED" if endpoint.is_some() => None,
        _ => lookup(name),
    })
    .map_err(|error| match error {
        TelemetryError::InvalidSettings { setting, message } => {
            let flag = flag_for(&setting);
            let named = if flag.is_empty() {
                setting
            } else {
                flag.to_string()
            };
            Failure::invalid_argument(format!("{named}: {message}"))
        }
        other => Failure::invalid_argument(other.to_string()),
    })?;
    if options.is_none() && protocol.is_some() {
        // A protocol flag asks for export: silently exporting nothing would hide the mistake.
        return Err(Failure::invalid_argument(
            "--otlp-protocol: export is off (no --otlp-endpoint, no OTEL_EXPORTER_OTLP_ENDPOINT \
             or signal endpoint, or OTEL_SDK_DISABLED=true), so the protocol would not be used"
                .to_string(),
        ));
    }
    Ok(options)
}

/// `options` exporting as configured (unchanged when export is off). A close that left
/// anything undelivered says so on stderr, once per command: otherwise a collector that is
/// down shows only as a silent wait of up to 5 s at exit.
pub fn with_otlp(mut options: EngineOptions) -> EngineOptions {
    if let Some(Some(otlp)) = SETTINGS.get() {
        let mut otlp = otlp.clone();
        otlp.on_close = Some(Arc::new(warn_when_undelivered));
        options.otlp = Some(otlp);
    }
    options
}

/// Warns (once) when the exporter closed with records the collector did not take.
fn warn_when_undelivered(counts: &OtlpSnapshot, gave_up: bool) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let undelivered = counts.dropped_failed + counts.dropped_rejected + counts.dropped_queue_full;
    if (gave_up || undelivered > 0) && !WARNED.swap(true, Ordering::Relaxed) {
        let reason = if gave_up {
            "the collector did not take everything before the 5 s close timeout (down or slow?)"
        } else if counts.dropped_failed + counts.dropped_rejected > 0 {
            "the collector refused records or could not be reached"
        } else {
            "records came faster than the exporter could send them (its queue was full)"
        };
        eprintln!(
            "warning: OTLP export incomplete: {reason}; {} exported, {undelivered} items dropped \
             (prompt_config_otlp_dropped_total)",
            counts.spans_exported + counts.log_records_exported + counts.metric_points_exported
        );
    }
}

#[cfg(test)]
mod tests {
    use super::settings;

    fn environment(name: &str) -> Option<String> {
        match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("http://from-env:4318".to_string()),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => Some("http/json".to_string()),
            _ => None,
        }
    }

    #[test]
    fn flags_win_over_the_environment() {
        let options = settings(Some("http://flag:4318"), Some("http/protobuf"), environment)
            .unwrap()
            .unwrap();
        assert_eq!(options.endpoint, "http://flag:4318");
        assert_eq!(options.protocol.as_str(), "http/protobuf");
    }

    #[test]
    fn a_protocol_flag_without_any_endpoint_is_a_usage_error() {
        for protocol in ["http/json", "grpc"] {
            let failure = settings(None, Some(protocol), |_: &str| None).unwrap_err();
            assert!(
                failure
                    .message
                    .starts_with("--otlp-protocol: export is off"),
                "{}",
                failure.message
            );
        }
    }

    #[test]
    fn environment_settings_without_an_endpoint_leave_export_off() {
        // Another program's OTEL_* settings in a shared environment must not break ours.
        let lookup = |name: &str| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "grpc".into());
        assert!(settings(None, None, lookup).unwrap().is_none());
    }

    #[test]
    fn a_bad_flag_is_named_as_the_flag() {
        let failure = settings(None, Some("grpc"), environment).unwrap_err();
        assert!(
            failure.message.starts_with("--otlp-protocol:"),
            "{}",
            failure.message
        );
    }
}
