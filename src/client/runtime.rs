//! The client's long-lived state: one provider implementation, circuit breaker(s) and rate
//! limiters per configured provider, and the budget book. It survives reloads: a provider whose
//! settings did not change keeps its breaker state and limiter buckets, and budget spend carries
//! over, so a reload in the middle of an outage does not send traffic to a broken provider.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::breaker::{CircuitBreaker, Fleet};
use super::budget::BudgetBook;
use super::clock::{Clock, Random};
use super::events::EventSink;
use super::http::HttpTransport;
use super::mock::MockProvider;
use super::rate_limit::RateLimiter;
use super::registry::{ProviderKinds, ProviderSetup};
use super::table::{CompiledProvider, ProviderTable};
use super::types::{AttemptError, FailureKind, Provider, ProviderRequest, ProviderResponse};
use crate::config::ClientSettings;
use crate::state::SharedState;

/// The kind mock mode builds every provider with.
const MOCK_KIND: &str = "mock";

/// What the client needs from the engine's options.
#[derive(Clone)]
pub(crate) struct ClientOptions {
    pub mock: bool,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub event_sink: Arc<dyn EventSink>,
    pub transport: Arc<HttpTransport>,
    /// The factories providers are built with, by kind.
    pub kinds: ProviderKinds,
    /// The fleet's shared state when the backend is Redis; `None` for the memory backend.
    pub shared: Option<SharedState>,
}

impl ClientOptions {
    /// The kind `spec` is built as: its own, or `mock` in mock mode.
    fn kind_of<'a>(&self, spec: &'a CompiledProvider) -> &'a str {
        if self.mock { MOCK_KIND } else { &spec.kind }
    }
}

/// One provider with its health and limits.
pub(crate) struct ProviderRuntime {
    pub name: String,
    pub spec: CompiledProvider,
    pub provider: Arc<dyn Provider>,
    pub mock: Option<Arc<MockProvider>>,
    breaker: CircuitBreaker,
    model_breakers: HashMap<String, CircuitBreaker>,
    limiter: Option<RateLimiter>,
    model_limiters: HashMap<String, RateLimiter>,
    /// The kind it was built as, so a change of mode rebuilds it.
    built_as: String,
}

impl ProviderRuntime {
    fn build(name: &str, spec: &CompiledProvider, options: &ClientOptions) -> ProviderRuntime {
        let now = options.clock.now();
        let built_as = options.kind_of(spec).to_string();
        let setup = ProviderSetup {
            name,
            spec,
            clock: &options.clock,
            random: &options.random,
            transport: &options.transport,
        };
        let provider: Arc<dyn Provider> = match options.kinds.get(&built_as) {
            Some(factory) => factory.build(&setup),
            // Loading refuses unknown kinds; this only guards an engine whose kinds changed.
            None => Arc::new(UnknownKind(built_as.clone())),
        };
        // The mock's fault script is reachable through `Engine::mock_provider`, whichever
        // factory built it.
        let mock = (Arc::clone(&provider) as Arc<dyn Any + Send + Sync>)
            .downcast::<MockProvider>()
            .ok();
        let model_breakers = if spec.circuit_breaker.per_model {
            spec.models
                .keys()
                .map(|model| {
                    let breaker = new_breaker(format!("{name}/{model}"), spec, options);
                    (model.clone(), breaker)
                })
                .collect()
        } else {
            HashMap::new()
        };
        // With Redis, the limits are the fleet's: one per provider and one per model, named
        // after them so every process shares them.
        let limiter = |settings: &crate::config::RateLimitSettings, shared_name: String| {
            RateLimiter::new(settings, now).with_shared(
                options.shared.clone(),
                &shared_name,
                settings,
            )
        };
        let model_limiters = spec
            .models
            .iter()
            .filter_map(|(model, compiled)| {
                let settings = compiled.rate_limit.as_ref()?;
                Some((
                    model.clone(),
                    limiter(settings, format!("model:{name}/{model}")),
                ))
            })
            .collect();
        ProviderRuntime {
            name: name.to_string(),
            spec: spec.clone(),
            provider,
            mock,
            breaker: new_breaker(name.to_string(), spec, options),
            model_breakers,
            limiter: spec
                .rate_limit
                .as_ref()
                .map(|settings| limiter(settings, format!("provider:{name}"))),
            model_limiters,
            built_as,
        }
    }

    /// The breaker guarding `model`: its own when breakers are per model, else the provider's.
    pub fn breaker(&self, model: &str) -> &CircuitBreaker {
        self.model_breakers.get(model).unwrap_or(&self.breaker)
    }

    /// Every breaker of this provider, for metrics and demos.
    pub fn breakers(&self) -> impl Iterator<Item = &CircuitBreaker> {
        std::iter::once(&self.breaker).chain(self.model_breakers.values())
    }

    /// The rate limiters a call to `model` must pass: the provider's and the model's.
    pub fn limiters(&self, model: &str) -> impl Iterator<Item = &RateLimiter> {
        self.limiter.iter().chain(self.model_limiters.get(model))
    }
}

/// A breaker of provider `spec`, sharing its knowledge with the fleet when the state is on
/// Redis. Its probe lease lasts the provider's timeout and a second, so a holder that died
/// mid-probe frees it soon after the probe would have ended anyway.
fn new_breaker(name: String, spec: &CompiledProvider, options: &ClientOptions) -> CircuitBreaker {
    let breaker = CircuitBreaker::new(name, spec.circuit_breaker.clone());
    match &options.shared {
        Some(shared) => {
            let lease = Duration::from_millis(spec.timeout_ms.saturating_add(1_000));
            breaker.with_fleet(Fleet::shared(shared, &options.clock, lease))
        }
        None => breaker,
    }
}

/// The client state of one configuration.
pub(crate) struct ClientRuntime {
    pub providers: HashMap<String, Arc<ProviderRuntime>>,
    pub settings: ClientSettings,
    pub budgets: Arc<BudgetBook>,
    budget_settings: BudgetKey,
}

impl ClientRuntime {
    /// Builds the runtime for `table`, keeping what `previous` had for every provider whose
    /// compiled entry is equal and that is built as the same kind.
    pub fn build(
        table: &ProviderTable,
        feature_budgets: HashMap<String, crate::config::BudgetSettings>,
        options: &ClientOptions,
        previous: Option<&ClientRuntime>,
    ) -> ClientRuntime {
        let providers = table
            .providers
            .iter()
            .map(|(name, spec)| {
                let reusable = previous
                    .and_then(|previous| previous.providers.get(name))
                    .filter(|existing| {
                        existing.built_as == options.kind_of(spec) && existing.spec == *spec
                    });
                let runtime = match reusable {
                    Some(existing) => Arc::clone(existing),
                    None => Arc::new(ProviderRuntime::build(name, spec, options)),
                };
                (name.clone(), runtime)
            })
            .collect();
        let budget_settings = BudgetKey {
            overall: table.budget.clone(),
            features: feature_budgets.clone(),
        };
        let budgets = match previous.filter(|previous| previous.budget_settings == budget_settings)
        {
            Some(previous) => Arc::clone(&previous.budgets),
            None => {
                // A hold outlives the longest call by a minute: a process that dies mid-call
                // frees it then, a live one always settles first.
                let hold = Duration::from_millis(table.client.deadline_ms)
                    .saturating_add(Duration::from_secs(60));
                let book = BudgetBook::new(table.budget.clone(), feature_budgets)
                    .with_shared(options.shared.clone(), hold);
                if let Some(previous) = previous {
                    carry_over_spend(&previous.budgets, &book, options.clock.utc_now());
                    book.adopt_unreconciled(&previous.budgets);
                }
                let book = Arc::new(book);
                book.watch_restored();
                book
            }
        };
        ClientRuntime {
            providers,
            settings: table.client.clone(),
            budgets,
            budget_settings,
        }
    }
}

/// The budget settings a book was built from, compared on reload.
#[derive(PartialEq)]
struct BudgetKey {
    overall: Option<crate::config::BudgetSettings>,
    features: HashMap<String, crate::config::BudgetSettings>,
}

/// What a provider of a kind the engine cannot build answers: every attempt fails at once.
struct UnknownKind(String);

impl Provider for UnknownKind {
    fn call(&self, _request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        Err(AttemptError::new(
            FailureKind::Connect,
            format!("no provider kind \"{}\" is registered", self.0),
        ))
    }
}

/// Copies this day's and this month's settled spend per scope into a new book.
fn carry_over_spend(previous: &BudgetBook, book: &BudgetBook, now: chrono::DateTime<chrono::Utc>) {
    let statuses = previous.status(now);
    let mut scopes: Vec<&str> = statuses
        .iter()
        .map(|status| status.scope.as_str())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    for scope in scopes {
        let settled = |period: &str| {
            statuses
                .iter()
                .find(|status| status.scope == scope && status.period == period)
                .map_or(0.0, |status| status.settled_usd)
        };
        book.restore_periods(scope, now, settled("day"), settled("month"));
    }
}
