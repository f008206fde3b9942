//! The failover client: calls a resolved model chain with retries, backoff honouring
//! Retry-After, a circuit breaker per provider, client-side rate limits, budgets and one overall
//! deadline, reporting everything through an [`EventSink`]. Providers speak HTTP with a shared
//! blocking `ureq` agent; the `mock` provider needs no key or network and can stage outages.

mod anthropic;
mod backoff;
mod breaker;
mod budget;
mod clock;
mod cost;
mod events;
mod http;
mod mock;
mod openai;
mod rate_limit;
mod secret;
mod types;

pub use cost::{cost_usd, estimate_prompt_tokens};
pub use mock::MockProvider;

pub use clock::{Clock, ManualClock, Random, SeededRandom, SystemClock};
pub use events::{BudgetAlert, CircuitTransition, ClientEvent, EventSink, NullSink};
pub use types::{AttemptError, FailureKind, Provider, ProviderRequest, ProviderResponse, Usage};
