//! The engine: the object an application holds for its lifetime. It serves resolves and
//! completions from the current state (a validated snapshot plus the client runtime built for
//! it) and swaps in a new state on reload; a failed reload keeps the old state serving and
//! reports every problem.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::cache::{MemoryLimits, ResponseCache};
use crate::client::{
    AttemptEnded, ClientEvent, ClientOptions, ClientRuntime, EventSink, HttpTransport,
    MockProvider, new_request_id,
};
use crate::options::EngineOptions;
use crate::resolve::{CompiledFeature, Context, Resolution, ResolveError};
use crate::snapshot::{Fingerprint, Snapshot, Summary};
use crate::state::{RedisState, SharedState, StateBackend, StateChange, StateListener};
use crate::telemetry::alerts::sink::AlertsSink;
use crate::telemetry::emit::Telemetry;
use crate::telemetry::metrics::{Metrics, MetricsSnapshot};
use crate::telemetry::otlp::exporter::{FiguresSource, OtlpExporter};
use crate::telemetry::recent::RecentRequests;
use crate::telemetry::sink::RecordSink;
use crate::telemetry::writer::TelemetryWriter;
use crate::telemetry::{TelemetryError, rebuild};

mod call;

/// What mock mode adds to the Redis key prefix (`prompt_config:mock:...`), keeping mock state
/// apart from the fleet's real state on the same Redis.
const MOCK_KEY_SUFFIX: &str = "mock";

/// A snapshot and the client runtime built from it, swapped together so a call never sees a
/// provider list from one configuration and prices from another.
struct State {
    snapshot: Arc<Snapshot>,
    client: Arc<ClientRuntime>,
}

/// Loads configs and prompts once and resolves and completes features, from any thread.
pub struct Engine {
    options: EngineOptions,
    client_options: ClientOptions,
    telemetry: Arc<Telemetry>,
    /// The response cache; it outlives reloads (its keys name the version and the inputs).
    cache: ResponseCache,
    /// Shared (weakly) with the OTLP exporter, which reads budgets and breakers from it.
    current: Arc<RwLock<Arc<State>>>,
    /// The files as last seen by a reload attempt; also serialises reloads so two concurrent
    /// ones cannot swap out of order.
    last_seen: Mutex<Fingerprint>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Engine")
            .field("options", &self.options)
            .field("revision", &self.snapshot().revision())
            .finish_non_exhaustive()
    }
}

pub use crate::telemetry::sink::SINK_CLOSE_TIMEOUT;

impl Engine {
    /// Loads and validates the configuration; fails listing every problem.
    pub fn open(options: EngineOptions) -> crate::Result<Engine> {
        // Scanned before reading, so a file changed during the load still counts as changed.
        let last_seen = Mutex::new(Fingerprint::scan(&options.paths));
        let snapshot = Snapshot::load_with_kinds(&options.paths, &options.provider_kinds)?;
        let writer = match &options.telemetry {
            Some(writer_options) => Some(TelemetryWriter::open(writer_options.clone()).map_err(
                |source| TelemetryError::Io {
                    path: writer_options.path.clone(),
                    source,
                },
            )?),
            None => None,
        };
        let metrics = Metrics::new();
        let otlp = options.otlp.as_ref().map(|otlp| {
            OtlpExporter::start(otlp, metrics.otlp_counters(), std::time::SystemTime::now())
        });
        let mut sinks: Vec<Arc<dyn RecordSink>> = Vec::new();
        sinks.extend(otlp.clone().map(|exporter| exporter as Arc<dyn RecordSink>));
        // Alerts (issue 15): when config/alerts.json exists, a sink whose thread starts below,
        // once the shared state its once-per-fleet claims use is built.
        let alerts = AlertsSink::open(
            snapshot.alerts().filter(|_| options.alerts),
            Arc::clone(&options.clock),
        );
        sinks.extend(alerts.clone().map(|alerts| alerts as Arc<dyn RecordSink>));
        let telemetry = Arc::new(Telemetry {
            writer,
            sinks,
            metrics,
            recent: RecentRequests::default(),
        });
        let shared = match &options.state {
            StateBackend::Memory => None,
            StateBackend::Redis(settings) => {
                let mut settings = settings.clone();
                if options.mock {
                    // Mock answers, spend and breaker states must never mix with the real ones
                    // of a fleet sharing this Redis: a later real call would be served a mock
                    // answer from the cache, and mock spend would count against real budgets.
                    settings.key_prefix = format!("{}:{MOCK_KEY_SUFFIX}", settings.key_prefix);
                }
                let redis = RedisState::new(settings).map_err(crate::Error::from)?;
                // Every change of health becomes a `state.degraded` / `state.restored` line and
                // moves the `prompt_config.state.degraded` gauge.
                let heard = Arc::clone(&telemetry);
                let clock = Arc::clone(&options.clock);
                let caller = options.state_listener.clone();
                let listener: StateListener = Arc::new(move |change: &StateChange| {
                    heard.state_changed(clock.utc_now(), change);
                    if let Some(caller) = &caller {
                        caller(change);
                    }
                });
                Some(SharedState::new(redis, listener))
            }
        };
        if let Some(alerts) = &alerts {
            alerts.start(Arc::downgrade(&telemetry), shared.clone());
        }
        let client_options = ClientOptions {
            mock: options.mock,
            clock: Arc::clone(&options.clock),
            random: Arc::clone(&options.random),
            event_sink: Arc::new(TelemetrySink {
                telemetry: Arc::clone(&telemetry),
                caller: Arc::clone(&options.event_sink),
                clock: Arc::clone(&options.clock),
            }),
            transport: Arc::new(HttpTransport::new()),
            kinds: options.provider_kinds.clone(),
            shared,
        };
        let client = ClientRuntime::build(
            &snapshot.providers,
            snapshot.budgets.clone(),
            &client_options,
            None,
        );
        // A deploy must not reset budgets: with the memory backend, this month's spend comes
        // back from the log. Redis keeps the fleet's spend itself, and a process's own log holds
        // only its share of it, so nothing is rebuilt there.
        let rebuild_spend = matches!(options.state, StateBackend::Memory);
        if let Some(writer_options) = options.telemetry.as_ref().filter(|_| rebuild_spend) {
            let now = options.clock.utc_now();
            for ((scope, day), usd) in
                rebuild::spend_this_month(&writer_options.path, writer_options.rotated_files, now)
            {
                if let Some(noon) = day.and_hms_opt(12, 0, 0) {
                    client.budgets.restore(&scope, noon.and_utc(), usd);
                }
            }
        }
        let current = Arc::new(RwLock::new(Arc::new(State {
            snapshot: Arc::new(snapshot),
            client: Arc::new(client),
        })));
        if let Some(exporter) = &otlp {
            exporter.set_figures(live_figures(&telemetry, &current, &options.clock));
        }
        Ok(Engine {
            cache: ResponseCache::new(client_options.shared.clone(), MemoryLimits::default()),
            options,
            client_options,
            telemetry,
            current,
            last_seen,
        })
    }

    /// Validates a configuration without keeping it.
    pub fn validate(options: &EngineOptions) -> crate::Result<Summary> {
        Ok(Snapshot::load_with_kinds(&options.paths, &options.provider_kinds)?.summary())
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    fn state(&self) -> Arc<State> {
        // The lock is held only to clone the pointer, never across a load or a call.
        Arc::clone(&self.current.read())
    }

    /// The snapshot currently served; holding it keeps it alive across reloads.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.state().snapshot)
    }

    /// Resolves `feature` for the subject in `context` and renders its messages.
    pub fn resolve(&self, feature: &str, context: &Context) -> crate::Result<Resolution> {
        let state = self.state();
        let (compiled, resolution) = self.resolve_in(&state.snapshot, feature, context)?;
        self.telemetry.resolved(
            || self.options.clock.utc_now(),
            &resolution,
            context,
            &compiled.telemetry,
        );
        Ok(resolution)
    }

    /// What became of the answers this engine's response cache was offered since it opened:
    /// stored, kept out by the never-cached rule, or not taken by the store (Redis failed or
    /// degraded). `prompt-config cache warm` reports these.
    pub fn cache_store_counts(&self) -> crate::cache::StoreCounts {
        self.cache.store_counts()
    }

    /// The response cache's store: `memory` (this process) or `redis` (the fleet).
    pub fn cache_backend(&self) -> &'static str {
        self.cache.backend()
    }

    /// Removes the cached answers of `feature` (of `version` only, when given; else of every
    /// version the current configuration lists). With Redis this clears them for the whole
    /// fleet and returns how many were deleted; the memory cache is this process's own, so
    /// clearing it affects only this engine (`None`: not counted).
    pub fn cache_clear(&self, feature: &str, version: Option<&str>) -> crate::Result<Option<u64>> {
        let versions = self.cache_versions(feature, version)?;
        let versions: Vec<&str> = versions.iter().map(String::as_str).collect();
        Ok(self.cache.clear(feature, &versions)?)
    }

    /// Live cached answers of `feature`, by version: in Redis (the fleet's), or in this
    /// engine's memory cache.
    pub fn cache_entries(&self, feature: &str) -> crate::Result<Vec<(String, u64)>> {
        let mut entries = Vec::new();
        for version in self.cache_versions(feature, None)? {
            let count = self.cache.entries(feature, &version)?;
            entries.push((version, count));
        }
        Ok(entries)
    }

    /// `version` checked against the feature's versions, or all of them.
    fn cache_versions(&self, feature: &str, version: Option<&str>) -> crate::Result<Vec<String>> {
        let snapshot = self.snapshot();
        let compiled = snapshot.feature(feature)?;
        let mut known: Vec<String> = compiled.pinnable.keys().cloned().collect();
        known.sort();
        match version {
            None => Ok(known),
            Some(version) if known.iter().any(|v| v == version) => Ok(vec![version.to_string()]),
            Some(version) => Err(ResolveError::UnknownVersion {
                feature: feature.to_string(),
                version: version.to_string(),
                known,
            }
            .into()),
        }
    }

    /// Records a quality signal (thumbs up/down, a 1-5 rating, a conversion) against a request,
    /// so versions and variants can be compared on quality. `value` is a boolean, a number or a
    /// short string.
    pub fn feedback(
        &self,
        request_id: &str,
        metric: &str,
        value: serde_json::Value,
    ) -> crate::Result<()> {
        let valid_value = matches!(
            value,
            serde_json::Value::Bool(_) | serde_json::Value::Number(_)
        ) || value.as_str().is_some_and(|text| text.len() <= 256);
        if request_id.trim().is_empty() || metric.trim().is_empty() || !valid_value {
            return Err(TelemetryError::InvalidFeedback {
                message: format!(
                    "feedback needs a request id, a metric name and a boolean, number or short string value \
                     (got request id {request_id:?}, metric {metric:?}, value {value})"
                ),
            }
            .into());
        }
        self.telemetry
            .feedback(self.options.clock.utc_now(), request_id, metric, &value);
        Ok(())
    }

    /// A snapshot of the live metrics: counts, errors, latency percentiles, tokens, cost,
    /// feedback, breaker states and dropped telemetry events.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.refresh_gauges();
        self.telemetry.metrics.snapshot()
    }

    /// The live metrics in the Prometheus text exposition format.
    pub fn prometheus_text(&self) -> String {
        self.refresh_gauges();
        self.telemetry.metrics.prometheus_text()
    }

    fn refresh_gauges(&self) {
        refresh_gauges(&self.telemetry, &self.state());
    }

    /// Writes every queued telemetry event and stops the writer; later events are not logged.
    /// Dropping the engine does the same.
    pub fn close(&self) {
        // The sinks first: what they report about their own delivery goes into the log. In
        // reverse order of opening: the alerts sink (opened last) writes `alert.*` lines as it
        // finishes, which the OTLP exporter (opened first) must still be open to export.
        for sink in self.telemetry.sinks.iter().rev() {
            sink.close(SINK_CLOSE_TIMEOUT);
        }
        if let Some(writer) = &self.telemetry.writer {
            writer.close();
        }
    }

    /// Queues an evaluation's `eval.case` and `eval.run` lines, stamped by the engine's clock;
    /// `build` runs only when a telemetry file is configured (the eval layer calls this).
    pub(crate) fn record_evaluation(
        &self,
        build: impl FnOnce() -> (
            Vec<crate::telemetry::event::EvalCaseFields>,
            Vec<crate::telemetry::event::EvalRunFields>,
        ),
    ) {
        if !self.telemetry.writes_lines() {
            return;
        }
        let (cases, runs) = build();
        self.telemetry
            .evaluated(self.options.clock.utc_now(), cases, runs);
    }

    /// Waits until every telemetry event recorded so far is in the file and handed to the
    /// other sinks' receivers (OTLP collector, alert channels), at most
    /// `SINK_CLOSE_TIMEOUT` (5 s) for each sink.
    pub fn flush_telemetry(&self) {
        // Alerts before OTLP, as in `close`: the alerts' own lines are then exported too.
        for sink in self.telemetry.sinks.iter().rev() {
            sink.flush(SINK_CLOSE_TIMEOUT);
        }
        if let Some(writer) = &self.telemetry.writer {
            writer.flush();
        }
    }

    /// The mock standing in for `provider` (in mock mode, or a provider of kind `mock`), to
    /// script faults in demos and tests.
    pub fn mock_provider(&self, provider: &str) -> Option<Arc<MockProvider>> {
        self.state()
            .client
            .providers
            .get(provider)
            .and_then(|runtime| runtime.mock.clone())
    }

    /// The state of every circuit breaker, by name.
    pub fn breaker_states(&self) -> Vec<(String, crate::client::BreakerState)> {
        breaker_states(&self.state())
    }

    /// Budget spend and limits per scope and period.
    pub fn budget_status(&self) -> Vec<crate::client::BudgetStatus> {
        self.state()
            .client
            .budgets
            .status(self.options.clock.utc_now())
    }

    /// Adds spend already settled elsewhere (for example rebuilt from the telemetry log after a
    /// restart) to `scope` (`overall` or `feature:<name>`) for the day and month containing `at`.
    /// With the Redis backend it is added to the fleet's windows on Redis too (at once, or when
    /// Redis answers again): the fleet has not counted it. Its alert thresholds are claimed for
    /// the fleet but not sent, as the spend alerted where it was made.
    pub fn restore_budget_spend(&self, scope: &str, at: chrono::DateTime<chrono::Utc>, usd: f64) {
        self.state().client.budgets.restore(scope, at, usd);
    }

    /// Call in a child after `fork()`: drops the pooled HTTP and Redis connections inherited
    /// from the parent, starts the child's own reconnect thread if the shared state was
    /// degraded at the fork, and starts the child's own telemetry writer (the writer and the
    /// shared state also notice a fork by themselves, by a pid check).
    pub fn after_fork(&self) {
        self.client_options.transport.reset();
        if let Some(shared) = &self.client_options.shared {
            shared.after_fork();
        }
        if let Some(writer) = &self.telemetry.writer {
            writer.after_fork();
        }
        for sink in &self.telemetry.sinks {
            sink.after_fork();
        }
    }

    /// Re-reads and validates everything, then swaps atomically. On error the previous state
    /// keeps serving and the error lists every problem. Breakers, limiters and budget spend of
    /// unchanged providers and budgets carry over.
    pub fn reload(&self) -> crate::Result<Summary> {
        let mut last_seen = self.last_seen.lock();
        self.reload_locked(&mut last_seen)
    }

    /// Reloads only when a file's name, size or modification time changed since the last
    /// reload attempt; returns whether it swapped. A broken change is reported once, and the
    /// previous snapshot keeps serving until the files change again.
    pub fn reload_if_changed(&self) -> crate::Result<bool> {
        let mut last_seen = self.last_seen.lock();
        if Fingerprint::scan(&self.options.paths) == *last_seen {
            return Ok(false);
        }
        self.reload_locked(&mut last_seen).map(|_| true)
    }

    fn reload_locked(&self, last_seen: &mut Fingerprint) -> crate::Result<Summary> {
        *last_seen = Fingerprint::scan(&self.options.paths);
        let now = self.options.clock.utc_now();
        let snapshot =
            match Snapshot::load_with_kinds(&self.options.paths, &self.options.provider_kinds) {
                Ok(snapshot) => snapshot,
                Err(error) => {
                    let problems = error
                        .problems()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>();
                    let problems = if problems.is_empty() {
                        vec![error.to_string()]
                    } else {
                        problems
                    };
                    self.telemetry
                        .reloaded(now, self.state().snapshot.revision(), problems);
                    return Err(error.into());
                }
            };
        let summary = snapshot.summary();
        self.telemetry.reloaded(now, &summary.revision, Vec::new());
        let previous = self.state();
        let client = ClientRuntime::build(
            &snapshot.providers,
            snapshot.budgets.clone(),
            &self.client_options,
            Some(&previous.client),
        );
        *self.current.write() = Arc::new(State {
            snapshot: Arc::new(snapshot),
            client: Arc::new(client),
        });
        Ok(summary)
    }
}

impl Engine {
    /// Resolves in `snapshot` and gives the resolution its request id.
    fn resolve_in<'s>(
        &self,
        snapshot: &'s Snapshot,
        feature: &str,
        context: &Context,
    ) -> crate::Result<(&'s CompiledFeature, Resolution)> {
        let compiled = snapshot.feature(feature)?;
        if let Some((provider, name)) = context.model_override() {
            snapshot.check_model(provider, name)?;
        }
        let mut resolution = compiled.resolve(context, &snapshot.revision)?;
        resolution.request_id = new_request_id(&*self.options.random);
        Ok((compiled, resolution))
    }
}

/// The live metrics' gauges brought up to date from `state` (breakers) and the log writer
/// (dropped events), before a snapshot or a scrape.
fn refresh_gauges(telemetry: &Telemetry, state: &State) {
    for (name, breaker) in breaker_states(state) {
        telemetry.metrics.set_breaker_state(&name, breaker);
    }
    if let Some(writer) = &telemetry.writer {
        telemetry.metrics.set_dropped_events(writer.dropped());
    }
}

/// Every circuit breaker of `state` with its state, sorted by name.
fn breaker_states(state: &State) -> Vec<(String, crate::client::BreakerState)> {
    let mut states: Vec<_> = state
        .client
        .providers
        .values()
        .flat_map(|provider| {
            provider
                .breakers()
                .map(|breaker| (breaker.name().to_string(), breaker.state()))
        })
        .collect();
    states.sort_by(|left, right| left.0.cmp(&right.0));
    states
}

/// What the OTLP exporter's metrics exports read: the live metrics (gauges refreshed) and the
/// budgets' statuses, through weak references (the exporter belongs to the telemetry, so strong
/// ones would keep both alive forever); empty once the engine is gone.
fn live_figures(
    telemetry: &Arc<Telemetry>,
    current: &Arc<RwLock<Arc<State>>>,
    clock: &Arc<dyn crate::client::Clock>,
) -> FiguresSource {
    let telemetry = Arc::downgrade(telemetry);
    let current = Arc::downgrade(current);
    let clock = Arc::clone(clock);
    Box::new(move || {
        let (Some(telemetry), Some(current)) = (telemetry.upgrade(), current.upgrade()) else {
            return (MetricsSnapshot::default(), Vec::new());
        };
        let state = Arc::clone(&current.read());
        refresh_gauges(&telemetry, &state);
        let budgets = state.client.budgets.status(clock.utc_now());
        (telemetry.metrics.snapshot(), budgets)
    })
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}

/// Forwards client events to the telemetry and to the caller's own sink.
struct TelemetrySink {
    telemetry: Arc<Telemetry>,
    caller: Arc<dyn EventSink>,
    clock: Arc<dyn crate::client::Clock>,
}

impl EventSink for TelemetrySink {
    fn emit(&self, request_id: &str, event: &ClientEvent) {
        self.telemetry
            .client_event(self.clock.utc_now(), request_id, event);
        self.caller.emit(request_id, event);
    }

    fn attempt_ended(&self, request_id: &str, ended: &AttemptEnded<'_>) {
        self.telemetry.attempt_ended(request_id, ended);
        self.caller.attempt_ended(request_id, ended);
    }
}
