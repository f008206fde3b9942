//! Engine options: where the configuration lives, and what drives the client (mock mode, the
//! clock, the random source, the event sink), injectable so tests are deterministic.

use std::path::PathBuf;
use std::sync::Arc;

use crate::paths::Paths;

use crate::client::{
    Clock, EventSink, NullSink, ProviderFactory, ProviderKinds, Random, SeededRandom, SystemClock,
};
use crate::state::{StateBackend, StateListener};
use crate::telemetry::otlp::OtlpOptions;
use crate::telemetry::writer::WriterOptions;

mod otlp_json;

/// Where the engine reads its configuration, and what drives its client.
#[derive(Clone)]
#[non_exhaustive]
pub struct EngineOptions {
    /// Where the configuration and the prompts are read from.
    pub paths: Paths,
    /// Route every provider to an offline mock (no keys, no network).
    pub mock: bool,
    /// Time for deadlines, breakers, rate limits and budgets.
    pub clock: Arc<dyn Clock>,
    /// Randomness for backoff jitter, request ids and mock faults.
    pub random: Arc<dyn Random>,
    /// Where breaker transitions and budget alerts go.
    pub event_sink: Arc<dyn EventSink>,
    /// The telemetry log and its writer settings; no log when `None`.
    pub telemetry: Option<WriterOptions>,
    /// Export spans, metrics and logs over OTLP/HTTP; `None` (the default) exports nothing.
    /// [`OtlpOptions::from_env`] reads the standard `OTEL_*` variables.
    pub otlp: Option<OtlpOptions>,
    /// Deliver the alerts `config/alerts.json` configures (true, the default). False keeps
    /// them silent while the file is still checked at open: for a run that must not page
    /// anyone, such as the demo's silent rehearsal or a benchmark.
    pub alerts: bool,
    /// Where fleet state lives: [`StateBackend::Memory`] (the default, per process) or
    /// [`StateBackend::Redis`]: budgets, rate limits, circuit breakers and the response cache
    /// shared by every process on the same Redis.
    pub state: StateBackend,
    /// Also told of every change of health of the shared state (Redis down: degraded; back:
    /// restored), after the telemetry; `None` by default. The CLI prints a warning with it.
    pub state_listener: Option<StateListener>,
    /// The provider kinds `providers.json` may name: the built-in ones and those registered
    /// with [`EngineOptions::with_provider_kind`].
    pub(crate) provider_kinds: ProviderKinds,
}

impl EngineOptions {
    /// Options reading `config_dir` and `prompts_dir`, with real time and no event sink.
    pub fn new(config_dir: impl Into<PathBuf>, prompts_dir: impl Into<PathBuf>) -> Self {
        EngineOptions::from_paths(Paths::new(config_dir, prompts_dir))
    }

    /// Options reading the directories of `paths`, with real time and no event sink.
    pub fn from_paths(paths: Paths) -> Self {
        EngineOptions {
            paths,
            mock: false,
            clock: Arc::new(SystemClock),
            random: Arc::new(SeededRandom::from_entropy()),
            event_sink: Arc::new(NullSink),
            telemetry: None,
            otlp: None,
            alerts: true,
            state: StateBackend::Memory,
            state_listener: None,
            provider_kinds: ProviderKinds::builtin(),
        }
    }

    /// Writes telemetry to `path` (JSON Lines) with the writer's default settings.
    pub fn with_telemetry(mut self, path: impl Into<PathBuf>) -> Self {
        self.telemetry = Some(WriterOptions::new(path.into()));
        self
    }

    /// Delivers the alerts of `config/alerts.json` (`true`, the default) or keeps them silent
    /// (see [`EngineOptions::alerts`]).
    pub fn with_alerts(mut self, alerts: bool) -> Self {
        self.alerts = alerts;
        self
    }

    /// Keeps fleet state in `state` (see [`StateBackend`]).
    pub fn with_state(mut self, state: StateBackend) -> Self {
        self.state = state;
        self
    }

    /// Tells `listener` of every change of health of the shared state (see
    /// [`EngineOptions::state_listener`]). It runs on the thread of the call that failed (or on
    /// the reconnect thread), so it must be quick.
    pub fn with_state_listener(mut self, listener: StateListener) -> Self {
        self.state_listener = Some(listener);
        self
    }

    /// Routes every provider to the offline mock.
    pub fn with_mock(mut self, mock: bool) -> Self {
        self.mock = mock;
        self
    }

    /// Uses `clock` instead of real time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `random` (a seeded source makes jitter reproducible).
    pub fn with_random(mut self, random: Arc<dyn Random>) -> Self {
        self.random = random;
        self
    }

    /// Sends client events to `sink`.
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.event_sink = sink;
        self
    }

    /// Lets `providers.json` entries of `kind` be built by `factory`, which gets the entry's
    /// name and compiled settings (its own settings in `options`) and the engine's clock,
    /// randomness and HTTP transport, and returns the [`Provider`](crate::client::Provider)
    /// that serves them; such a provider gets breakers, limits, retries, budgets, prices and
    /// telemetry like a built-in one. Registering a built-in name (`openai`, `anthropic`,
    /// `openai_compatible`, `mock`) replaces it; mock mode builds every provider with the
    /// factory registered as `mock`. An entry of a kind never registered is refused at load.
    pub fn with_provider_kind(
        mut self,
        kind: impl Into<String>,
        factory: impl ProviderFactory + 'static,
    ) -> Self {
        self.provider_kinds.register(kind, factory);
        self
    }

    /// The provider kinds this engine can build.
    pub fn provider_kinds(&self) -> &ProviderKinds {
        &self.provider_kinds
    }
}

impl Default for EngineOptions {
    /// `./config` and `./prompts`.
    fn default() -> Self {
        EngineOptions::new("config", "prompts")
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EngineOptions")
            .field("paths", &self.paths)
            .field("mock", &self.mock)
            .field("alerts", &self.alerts)
            .field("provider_kinds", &self.provider_kinds)
            .field("state", &self.state)
            .field(
                "telemetry",
                &self.telemetry.as_ref().map(|writer| &writer.path),
            )
            .finish_non_exhaustive()
    }
}

/// The JSON shape bindings pass to open an engine (the C ABI's `pc_engine_open`, the gem).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsJson {
    #[serde(default)]
    config_dir: Option<PathBuf>,
    #[serde(default)]
    prompts_dir: Option<PathBuf>,
    #[serde(default)]
    mock: bool,
    #[serde(default)]
    telemetry: Option<TelemetryJson>,
    #[serde(default)]
    state: Option<serde_json::Value>,
    #[serde(default)]
    otlp: Option<serde_json::Value>,
    #[serde(default)]
    alerts: Option<bool>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum TelemetryJson {
    Path(PathBuf),
    Settings(TelemetrySettingsJson),
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetrySettingsJson {
    path: PathBuf,
    #[serde(default)]
    queue_capacity: Option<usize>,
    #[serde(default)]
    flush_interval_ms: Option<u64>,
    #[serde(default)]
    rotate_bytes: Option<u64>,
    #[serde(default)]
    rotated_files: Option<u32>,
}

impl EngineOptions {
    /// Options from the JSON bindings pass: `{"config_dir", "prompts_dir", "mock", "telemetry",
    /// "state", "otlp", "alerts"}`, every key optional (`./config`, `./prompts`, no mock, no
    /// telemetry, memory state, no OTLP export, alerts delivered); `alerts: false` keeps
    /// `alerts.json`'s alerts silent (see [`EngineOptions::alerts`]); `telemetry` is a path or `{"path", "queue_capacity",
    /// "flush_interval_ms", "rotate_bytes", "rotated_files"}`; `state` is `"memory"` or
    /// `{"backend": "redis", "url", ...}` (see [`StateBackend::from_json`]); `otlp` is `true`
    /// (the standard `OTEL_*` environment variables; no export when they name no endpoint),
    /// `false`, or `{"endpoint", "traces_endpoint", "metrics_endpoint", "logs_endpoint",
    /// "protocol": "http/protobuf" | "http/json", "headers": {..}, "service_name",
    /// "resource_attributes": {..}, "compression": "gzip" | "none", "timeout_ms",
    /// "batch_delay_ms", "max_queue", "max_batch", "metrics_interval_ms"}` (see
    /// [`OtlpOptions`]); a refused setting is named by its pointer (`/otlp/headers/x-api-key`),
    /// a header value never quoted.
    pub fn from_json(json: &str) -> Result<EngineOptions, crate::config::ConfigError> {
        let parsed: OptionsJson =
            serde_json::from_str(json).map_err(|error| crate::config::ConfigError::Rejected {
                file: "engine options".into(),
                pointer: String::new(),
                message: format!("invalid engine options JSON: {error}"),
            })?;
        let mut options = EngineOptions::new(
            parsed.config_dir.unwrap_or_else(|| PathBuf::from("config")),
            parsed
                .prompts_dir
                .unwrap_or_else(|| PathBuf::from("prompts")),
        )
        .with_mock(parsed.mock)
        .with_alerts(parsed.alerts.unwrap_or(true));
        if parsed.state.is_some() || parsed.otlp.is_some() {
            // A repeated key inside `state` (two `url`s) or `otlp` (two headers of one name) is
            // refused as config files refuse it: serde_json would silently keep the last one.
            if let Err(crate::config::json::JsonProblem::DuplicateKeys { pointers, .. }) =
                crate::config::json::parse_strict(json.as_bytes())
                && let Some(pointer) = pointers
                    .iter()
                    .find(|pointer| pointer.starts_with("/state/") || pointer.starts_with("/otlp/"))
            {
                let key = pointer.rsplit('/').next().unwrap_or_default();
                return Err(crate::config::ConfigError::Rejected {
                    file: "engine options".into(),
                    pointer: pointer.clone(),
                    message: format!(
                        "duplicate key \"{key}\": an object may name a key only once (a JSON \
                         reader would silently keep only the last value); remove one"
                    ),
                });
            }
        }
        if let Some(otlp) = &parsed.otlp {
            options.otlp = otlp_json::parse(otlp)?;
        }
        if let Some(state) = &parsed.state {
            options.state = StateBackend::from_json(state).map_err(|error| match error {
                crate::state::StateError::InvalidSettings { setting, message } => {
                    crate::config::ConfigError::Rejected {
                        file: "engine options".into(),
                        pointer: setting,
                        message,
                    }
                }
                other => crate::config::ConfigError::Rejected {
                    file: "engine options".into(),
                    pointer: "/state".into(),
                    message: other.to_string(),
                },
            })?;
        }
        options.telemetry = parsed.telemetry.map(|telemetry| match telemetry {
            TelemetryJson::Path(path) => WriterOptions::new(path),
            TelemetryJson::Settings(settings) => {
                let mut writer = WriterOptions::new(settings.path);
                if let Some(capacity) = settings.queue_capacity {
                    writer.queue_capacity = capacity;
                }
                if let Some(interval) = settings.flush_interval_ms {
                    writer.flush_interval = std::time::Duration::from_millis(interval);
                }
                if let Some(bytes) = settings.rotate_bytes {
                    writer.rotate_bytes = Some(bytes);
                }
                if let Some(files) = settings.rotated_files {
                    writer.rotated_files = files;
                }
                writer
            }
        });
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::EngineOptions;

    #[test]
    fn empty_json_gives_the_defaults() {
        let options = EngineOptions::from_json("{}").unwrap();
        assert_eq!(options.paths.config_dir, std::path::PathBuf::from("config"));
        assert!(!options.mock && options.telemetry.is_none());
        assert!(options.alerts, "alerts are delivered unless turned off");
    }

    #[test]
    fn alerts_false_keeps_alerts_silent() {
        assert!(
            !EngineOptions::from_json(r#"{"alerts": false}"#)
                .unwrap()
                .alerts
        );
        assert!(
            EngineOptions::from_json(r#"{"alerts": true}"#)
                .unwrap()
                .alerts
        );
        assert!(EngineOptions::from_json(r#"{"alerts": "no"}"#).is_err());
    }

    #[test]
    fn telemetry_may_be_a_path_or_settings() {
        let options =
            EngineOptions::from_json(r#"{"mock": true, "telemetry": "t.jsonl"}"#).unwrap();
        assert_eq!(
            options.telemetry.unwrap().path,
            std::path::PathBuf::from("t.jsonl")
        );
        let options =
            EngineOptions::from_json(r#"{"telemetry": {"path": "t.jsonl", "rotated_files": 2}}"#)
                .unwrap();
        assert_eq!(options.telemetry.unwrap().rotated_files, 2);
    }

    #[test]
    fn state_defaults_to_memory_and_may_name_a_redis_server() {
        use crate::state::StateBackend;
        assert_eq!(
            EngineOptions::from_json("{}").unwrap().state,
            StateBackend::Memory
        );
        let options = EngineOptions::from_json(
            r#"{"state": {"backend": "redis", "url": "redis://127.0.0.1:6379/", "pool_size": 2}}"#,
        )
        .unwrap();
        let StateBackend::Redis(settings) = options.state else {
            panic!("not redis: {:?}", options.state)
        };
        assert_eq!(settings.pool_size, 2);
    }

    #[test]
    fn a_bad_state_setting_names_its_pointer() {
        let error = EngineOptions::from_json(
            r#"{"state": {"backend": "redis", "url": "redis://h/", "pool_size": -1}}"#,
        )
        .unwrap_err();
        assert_eq!(error.kind(), "config_invalid");
        assert!(error.to_string().contains("/state/pool_size"), "{error}");
    }

    #[test]
    fn a_duplicate_key_inside_state_is_refused_naming_its_pointer() {
        let error = EngineOptions::from_json(
            r#"{"state": {"backend": "redis", "url": "redis://a/", "url": "redis://b/"}}"#,
        )
        .unwrap_err();
        assert_eq!(error.kind(), "config_invalid");
        let text = error.to_string();
        assert!(text.contains("/state/url"), "{text}");
        assert!(text.contains("duplicate key \"url\""), "{text}");
    }

    #[test]
    fn a_duplicate_key_prefix_inside_state_is_refused_too() {
        let error = EngineOptions::from_json(
            r#"{"state": {"backend": "redis", "url": "redis://a/", "key_prefix": "x", "key_prefix": "y"}}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("/state/key_prefix"), "{error}");
    }

    #[test]
    fn unknown_keys_and_bad_json_are_rejected() {
        assert_eq!(
            EngineOptions::from_json(r#"{"confg_dir": "x"}"#)
                .unwrap_err()
                .kind(),
            "config_invalid"
        );
        assert!(EngineOptions::from_json("{").is_err());
    }
}
