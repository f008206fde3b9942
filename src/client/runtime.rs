//! The client's long-lived state: one provider implementation, circuit breaker(s) and rate
//! limiters per configured provider, and the budget book. It survives reloads: a provider whose
//! settings did not change keeps its breaker state and limiter buckets, and budget spend carries
//! over, so a reload in the middle of an outage does not send traffic to a broken provider.

use std::collections::HashMap;
use std::sync::Arc;

use super::anthropic::AnthropicProvider;
use super::breaker::CircuitBreaker;
use super::budget::BudgetBook;
use super::clock::{Clock, Random};
use super::events::EventSink;
use super::http::HttpTransport;
use super::mock::MockProvider;
use super::openai::OpenAiProvider;
use super::rate_limit::RateLimiter;
use super::types::Provider;
use crate::config::{ClientSettings, ProviderKind, ProviderSpec, ProvidersConfig};

/// What the client needs from the engine's options.
#[derive(Clone)]
pub(crate) struct ClientOptions {
    pub mock: bool,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub event_sink: Arc<dyn EventSink>,
    pub transport: Arc<HttpTransport>,
}

/// One provider with its health and limits.
pub(crate) struct ProviderRuntime {
    pub name: String,
    pub spec: ProviderSpec,
    pub provider: Arc<dyn Provider>,
    pub mock: Option<Arc<MockProvider>>,
    breaker: CircuitBreaker,
    model_breakers: HashMap<String, CircuitBreaker>,
    limiter: Option<RateLimiter>,
    model_limiters: HashMap<String, RateLimiter>,
    /// Whether this runtime was built as a mock, so a change of mode rebuilds it.
    mocked: bool,
}

impl ProviderRuntime {
    fn build(name: &str, spec: &ProviderSpec, options: &ClientOptions) -> ProviderRuntime {
        let now = options.clock.now();
        let mocked = options.mock || spec.kind == ProviderKind::Mock;
        let (provider, mock): (Arc<dyn Provider>, Option<Arc<MockProvider>>) = if mocked {
            let mock = Arc::new(MockProvider::new(
                name,
                spec.mock.clone(),
                Arc::clone(&options.clock),
                Arc::clone(&options.random),
            ));
            (Arc::clone(&mock) as Arc<dyn Provider>, Some(mock))
        } else if spec.kind == ProviderKind::Anthropic {
            (
                Arc::new(AnthropicProvider::new(spec, Arc::clone(&options.transport))),
                None,
            )
        } else {
            (
                Arc::new(OpenAiProvider::new(spec, Arc::clone(&options.transport))),
                None,
            )
        };
        let model_breakers = if spec.circuit_breaker.per_model {
            spec.models
                .keys()
                .map(|model| {
                    let breaker = CircuitBreaker::new(
                        format!("{name}/{model}"),
                        spec.circuit_breaker.clone(),
                    );
                    (model.clone(), breaker)
                })
                .collect()
        } else {
            HashMap::new()
        };
        let model_limiters = spec
            .models
            .iter()
            .filter_map(|(model, pricing)| {
                Some((
                    model.clone(),
                    RateLimiter::new(pricing.rate_limit.as_ref()?, now),
                ))
            })
            .collect();
        ProviderRuntime {
            name: name.to_string(),
            spec: spec.clone(),
            provider,
            mock,
            breaker: CircuitBreaker::new(name, spec.circuit_breaker.clone()),
            model_breakers,
            limiter: spec
                .rate_limit
                .as_ref()
                .map(|settings| RateLimiter::new(settings, now)),
            model_limiters,
            mocked,
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

/// The client state of one configuration.
pub(crate) struct ClientRuntime {
    pub providers: HashMap<String, Arc<ProviderRuntime>>,
    pub settings: ClientSettings,
    pub budgets: Arc<BudgetBook>,
    budget_settings: String,
}

impl ClientRuntime {
    /// Builds the runtime for `config`, reusing what `previous` had for unchanged providers.
    pub fn build(
        config: &ProvidersConfig,
        feature_budgets: HashMap<String, crate::config::BudgetSettings>,
        options: &ClientOptions,
        previous: Option<&ClientRuntime>,
    ) -> ClientRuntime {
        let providers = config
            .providers
            .iter()
            .map(|(name, spec)| {
                let reusable = previous
                    .and_then(|previous| previous.providers.get(name))
                    .filter(|existing| {
                        existing.mocked == (options.mock || spec.kind == ProviderKind::Mock)
                            && serde_json::to_value(&existing.spec).ok()
                                == serde_json::to_value(spec).ok()
                    });
                let runtime = match reusable {
                    Some(existing) => Arc::clone(existing),
                    None => Arc::new(ProviderRuntime::build(name, spec, options)),
                };
                (name.clone(), runtime)
            })
            .collect();
        let budget_settings =
            serde_json::to_string(&(&config.budget, &sorted(&feature_budgets))).unwrap_or_default();
        let budgets = match previous.filter(|previous| previous.budget_settings == budget_settings)
        {
            Some(previous) => Arc::clone(&previous.budgets),
            None => {
                let book = BudgetBook::new(config.budget.clone(), feature_budgets);
                if let Some(previous) = previous {
                    carry_over_spend(&previous.budgets, &book, options.clock.utc_now());
                }
                Arc::new(book)
            }
        };
        ClientRuntime {
            providers,
            settings: config.client.clone(),
            budgets,
            budget_settings,
        }
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

fn sorted<T>(map: &HashMap<String, T>) -> Vec<(&String, &T)> {
    let mut entries: Vec<(&String, &T)> = map.iter().collect();
    entries.sort_by(|left, right| left.0.cmp(right.0));
    entries
}
