//! The engine: the object an application holds for its lifetime. It serves resolves and
//! completions from the current state (a validated snapshot plus the client runtime built for
//! it) and swaps in a new state on reload; a failed reload keeps the old state serving and
//! reports every problem.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::client::{
    ClientOptions, ClientRuntime, Completion, HttpTransport, MockProvider, complete,
};
use crate::resolve::{Context, Resolution, ResolveError};
use crate::snapshot::{EngineOptions, Fingerprint, Snapshot, Summary};

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
    current: RwLock<Arc<State>>,
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

impl Engine {
    /// Loads and validates the configuration; fails listing every problem.
    pub fn open(options: EngineOptions) -> crate::Result<Engine> {
        // Scanned before reading, so a file changed during the load still counts as changed.
        let last_seen = Mutex::new(Fingerprint::scan(&options));
        let snapshot = Snapshot::load(&options)?;
        let client_options = ClientOptions {
            mock: options.mock,
            clock: Arc::clone(&options.clock),
            random: Arc::clone(&options.random),
            event_sink: Arc::clone(&options.event_sink),
            transport: Arc::new(HttpTransport::new()),
        };
        let client = ClientRuntime::build(
            &snapshot.providers,
            snapshot.budgets.clone(),
            &client_options,
            None,
        );
        let state = State {
            snapshot: Arc::new(snapshot),
            client: Arc::new(client),
        };
        Ok(Engine {
            options,
            client_options,
            current: RwLock::new(Arc::new(state)),
            last_seen,
        })
    }

    /// Validates a configuration without keeping it.
    pub fn validate(options: &EngineOptions) -> crate::Result<Summary> {
        Ok(Snapshot::load(options)?.summary())
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
        resolve_in(&self.state().snapshot, feature, context)
    }

    /// Resolves `feature`, then calls its model chain with retries, failover, breakers, rate
    /// limits and budgets, inside the configured deadline.
    pub fn complete(&self, feature: &str, context: &Context) -> crate::Result<Completion> {
        let state = self.state();
        let resolution = resolve_in(&state.snapshot, feature, context)?;
        Ok(complete(
            &state.client,
            &state.snapshot.providers,
            &self.client_options,
            resolution,
        )?)
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
        let state = self.state();
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

    /// Budget spend and limits per scope and period.
    pub fn budget_status(&self) -> Vec<crate::client::BudgetStatus> {
        self.state()
            .client
            .budgets
            .status(self.options.clock.utc_now())
    }

    /// Adds spend already settled elsewhere (for example rebuilt from the telemetry log after a
    /// restart) to `scope` (`overall` or `feature:<name>`) for the day and month containing `at`.
    pub fn restore_budget_spend(&self, scope: &str, at: chrono::DateTime<chrono::Utc>, usd: f64) {
        self.state().client.budgets.restore(scope, at, usd);
    }

    /// Drops pooled connections inherited through `fork()`; the child then opens its own.
    pub fn after_fork(&self) {
        self.client_options.transport.reset();
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
        if Fingerprint::scan(&self.options) == *last_seen {
            return Ok(false);
        }
        self.reload_locked(&mut last_seen).map(|_| true)
    }

    fn reload_locked(&self, last_seen: &mut Fingerprint) -> crate::Result<Summary> {
        *last_seen = Fingerprint::scan(&self.options);
        let snapshot = Snapshot::load(&self.options)?;
        let summary = snapshot.summary();
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

fn resolve_in(snapshot: &Snapshot, feature: &str, context: &Context) -> crate::Result<Resolution> {
    let Some(compiled) = snapshot.features.get(feature) else {
        return Err(ResolveError::UnknownFeature {
            feature: feature.to_string(),
            known: snapshot
                .feature_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
        .into());
    };
    compiled.resolve(context, &snapshot.revision)
}
