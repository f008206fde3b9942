//! The failover client: calls a resolved model chain with retries, backoff honouring
//! Retry-After, a circuit breaker per provider, client-side rate limits, budgets and one overall
//! deadline, reporting everything through an [`EventSink`]. Providers speak HTTP with a shared
//! blocking `ureq` agent; the `mock` provider needs no key or network and can stage outages.

mod anthropic;
mod backoff;
mod breaker;
mod budget;
pub(crate) mod cancel;
mod clock;
mod complete;
mod cost;
mod endpoint;
mod event_stream;
mod events;
mod http;
mod limits;
mod mock;
mod openai;
mod outcome;
mod policy;
mod rate_limit;
mod registry;
mod request;
mod runtime;
mod secret;
mod socket;
mod sse;
mod stream;
mod table;
mod tokens;
mod types;

// What a user needs is `pub`; the machinery only this crate's tests reach is `internal_use!`
// (public and hidden with the `test-hooks` feature, crate-private otherwise).
internal_use!(backoff::{backoff_delay, parse_retry_after});
internal_use!(breaker::{Admission, BreakerFailure, BreakerRejection, CircuitBreaker});
pub use breaker::BreakerState;
internal_use!(budget::{BudgetBook, BudgetExceeded, Reservation, ReserveOutcome});
pub use budget::BudgetStatus;
pub use cancel::CancelToken;
pub use clock::{Clock, ManualClock, Random, SeededRandom, SystemClock};
pub(crate) use complete::{Failure, StreamSettings, complete, new_request_id, stream};
internal_use!(cost::{
    CallCost, call_cost, cost_usd, estimate_prompt_tokens, highest_pricing, worst_case_usd,
});
pub use cost::EstimatedPart;
internal_use!(endpoint::{
    AnthropicProvider, ChatCompletions, HttpProvider, Messages, OpenAiProvider,
});
pub use events::{AttemptEnded, BudgetAlert, CircuitTransition, ClientEvent, EventSink, NullSink};
pub use http::{HttpResponse, HttpTransport};
pub use mock::{MockProvider, StreamFault};
pub use outcome::{
    Attempt, AttemptOutcome, CacheHit, CompleteError, Completion, Interruption, StreamStats,
    UnusableAnswer,
};
internal_use!(policy::{NextStep, breaker_failure, next_step});
internal_use!(rate_limit::{Acquired, RateLimiter});
pub use registry::{ProviderFactory, ProviderKinds, ProviderSetup};
pub(crate) use request::CallRequest;
pub(crate) use runtime::{ClientOptions, ClientRuntime};
pub use secret::ApiKey;
pub use stream::{ProviderStream, StreamChunk, StreamControl, StreamEvent, StreamTimeouts};
pub use table::{CompiledModel, CompiledProvider, Prices, ProviderTable};
internal_use!(tokens::{TokenCounter, upper_bound_tokens});
pub use types::{
    AttemptError, FailureKind, FinishReason, Provider, ProviderRequest, ProviderResponse, Usage,
    UsageReported,
};
