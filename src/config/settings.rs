//! Client settings carried by `providers.json` and feature files: per-call deadline, retries,
//! circuit breakers, client-side rate limits, budgets and the mock provider. Every field has a
//! default, so a config that names none of them gets sensible production behaviour.

use serde::{Deserialize, Serialize};

use super::model::ModelSpec;

/// Settings of the whole client (`providers.json` → `client`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ClientSettings {
    /// Bounds every attempt and sleep of one `complete()` call together (30 s).
    pub deadline_ms: u64,
    /// What to do when every provider of the chain has an open breaker.
    pub when_all_open: AllOpenPolicy,
    /// How streamed calls treat silence and breaks (`client.stream`).
    pub stream: StreamClientSettings,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            deadline_ms: 30_000,
            when_all_open: AllOpenPolicy::FailFast,
            stream: StreamClientSettings::default(),
        }
    }
}

/// Streamed calls (`providers.json` → `client.stream`). The deadline (`client.deadline_ms`)
/// still bounds the whole call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamClientSettings {
    /// The longest wait for the first text delta of an attempt, in milliseconds (10 000);
    /// past it the attempt fails as a `timeout` and the call retries or fails over.
    pub first_token_timeout_ms: u64,
    /// The longest gap between two chunks once text has arrived, in milliseconds (15 000);
    /// past it the stream is incomplete.
    pub stall_timeout_ms: u64,
    /// When a stream breaks after its first token, start again on the next model (telling
    /// the caller the text so far is void) instead of failing with `stream_incomplete` (false).
    pub restart_on_incomplete: bool,
}

impl Default for StreamClientSettings {
    fn default() -> Self {
        StreamClientSettings {
            first_token_timeout_ms: 10_000,
            stall_timeout_ms: 15_000,
            restart_on_incomplete: false,
        }
    }
}

/// The behaviour when every breaker of a chain is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllOpenPolicy {
    /// Fail at once with `circuit_open`.
    FailFast,
    /// Send one call to the provider whose breaker opened first (it has rested longest).
    TryEarliestOpened,
}

/// Retries of one provider (`providers.json` → provider → `retry`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct RetrySettings {
    /// Attempts per model before moving on, the first included (3).
    pub max_attempts: u32,
    /// Backoff base: attempt n waits a random time in [0, min(cap, base * 2^(n-1))] (250 ms).
    pub base_delay_ms: u64,
    /// Backoff cap (8 s).
    pub max_delay_ms: u64,
    /// The longest `Retry-After` we honour by waiting; longer ones move to the next provider (20 s).
    pub max_retry_after_ms: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_attempts: 3,
            base_delay_ms: 250,
            max_delay_ms: 8_000,
            max_retry_after_ms: 20_000,
        }
    }
}

/// The circuit breaker of one provider (`providers.json` → provider → `circuit_breaker`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct BreakerSettings {
    /// Opens when the failure share of the window's calls reaches this (0.5).
    pub failure_rate_threshold: f64,
    /// The sliding window for the failure rate (60 s).
    pub window_ms: u64,
    /// Calls the window needs before the failure rate counts (10).
    pub minimum_calls: u32,
    /// Opens after this many failures in a row (5).
    pub consecutive_failures: u32,
    /// How long the first trip keeps it open (30 s); each further trip doubles it.
    pub open_ms: u64,
    /// The cap on the open time (5 min).
    pub max_open_ms: u64,
    /// Probe calls let through while half-open; all must succeed to close (1).
    pub half_open_probes: u32,
    /// One breaker per model of the provider instead of one for the provider (false).
    pub per_model: bool,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            failure_rate_threshold: 0.5,
            window_ms: 60_000,
            minimum_calls: 10,
            consecutive_failures: 5,
            open_ms: 30_000,
            max_open_ms: 300_000,
            half_open_probes: 1,
            per_model: false,
        }
    }
}

/// A client-side rate limit (provider or model → `rate_limit`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Requests per minute, as a token bucket refilled continuously.
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt estimate plus max output) per minute.
    pub tokens_per_minute: Option<u64>,
    /// How long a call may wait for capacity before moving to the next provider (0: never wait).
    pub max_wait_ms: u64,
}

/// A budget (`providers.json` → `budget` for the overall scope, feature file → `budget`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BudgetSettings {
    /// The limit per UTC day in USD.
    #[serde(default)]
    pub daily_usd: Option<f64>,
    /// The limit per UTC calendar month in USD.
    #[serde(default)]
    pub monthly_usd: Option<f64>,
    /// What happens at 100%.
    #[serde(default = "default_policy")]
    pub policy: BudgetPolicy,
    /// The cheaper chain used by the `downgrade` policy.
    #[serde(default)]
    pub downgrade: Option<DowngradeChain>,
    /// What the budget does while the shared state (Redis) is unavailable: keep serving on the
    /// process's own ledger (`local`, the default) or refuse calls (`block`). Without a Redis
    /// backend it never applies.
    #[serde(default)]
    pub while_degraded: WhileDegraded,
}

/// What a budget does while the fleet's shared state is unavailable (issue 11).
///
/// `local` keeps the app answering but lets each process spend up to what is left of the limit
/// on its own, so a fleet of N processes may overspend up to N times the remainder for the
/// length of the outage; `block` keeps the limit but refuses every call of the scope
/// (`state_unavailable`, retryable) until Redis answers again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WhileDegraded {
    /// Serve on the per-process ledger, seeded with the last fleet spend seen.
    #[default]
    Local,
    /// Refuse calls this budget applies to with `state_unavailable`.
    Block,
}

impl WhileDegraded {
    /// The setting as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            WhileDegraded::Local => "local",
            WhileDegraded::Block => "block",
        }
    }
}

fn default_policy() -> BudgetPolicy {
    BudgetPolicy::Block
}

/// The policy of a budget at 100%.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPolicy {
    /// Refuse the call with `budget_exceeded`.
    Block,
    /// Use the budget's cheaper `downgrade` chain.
    Downgrade,
    /// Alert only.
    Allow,
}

impl BudgetPolicy {
    /// The policy as written in configs and events.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetPolicy::Block => "block",
            BudgetPolicy::Downgrade => "downgrade",
            BudgetPolicy::Allow => "allow",
        }
    }
}

/// The cheaper model chain of a `downgrade` budget.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DowngradeChain {
    /// The cheaper primary model.
    pub model: ModelSpec,
    /// Its fallbacks.
    #[serde(default)]
    pub fallbacks: Vec<ModelSpec>,
}

/// The mock provider's behaviour (`providers.json` → mock provider → `mock`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct MockSettings {
    /// Simulated latency per call in milliseconds (0).
    pub latency_ms: u64,
    /// Random extra latency up to this many milliseconds, for realistic percentiles (0).
    pub jitter_ms: u64,
    /// A streamed answer's chunk size, in characters (16; 0 counts as 1).
    pub stream_chunk_chars: u64,
    /// The pause between two streamed chunks, in milliseconds (0).
    pub stream_delay_ms: u64,
    /// The share (0 to 1) of structured answers and tool calls the mock makes deliberately
    /// invalid (not JSON, or breaking the schema), drawn on the engine's `Random`, so demos and
    /// tests show repairs and failovers (0: every structured answer is valid).
    pub invalid_output_share: f64,
}

impl Default for MockSettings {
    fn default() -> Self {
        MockSettings {
            latency_ms: 0,
            jitter_ms: 0,
            stream_chunk_chars: 16,
            stream_delay_ms: 0,
            invalid_output_share: 0.0,
        }
    }
}

/// What a feature's telemetry records (feature file → `telemetry`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct TelemetrySettings {
    /// Record the rendered prompt and the response text (false).
    pub record_text: bool,
    /// Record subject ids as `sha256:<hex>` (true).
    pub hash_subject_id: bool,
    /// Attributes copied into events so results can be cut by them.
    pub attributes: Vec<String>,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            record_text: false,
            hash_subject_id: true,
            attributes: Vec::new(),
        }
    }
}

/// Limits on the conversation history of one request (feature file → `history`): a history
/// past either is refused at resolve with `invalid_messages`, before any token is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistorySettings {
    /// The most history messages (user, assistant and tool turns) one request may carry (50).
    pub max_messages: u32,
    /// The most bytes of history one request may carry (262 144, 256 KiB): the UTF-8 bytes of
    /// every message's content, tool call ids and names, the compact JSON of their arguments
    /// and every `tool_call_id`.
    pub max_bytes: u64,
}

impl HistorySettings {
    /// The default `max_messages`: a long chat, or a tool loop of a dozen rounds.
    pub const DEFAULT_MAX_MESSAGES: u32 = 50;
    /// The default `max_bytes` (256 KiB, about 64 000 tokens of English prose).
    pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024;
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            max_messages: Self::DEFAULT_MAX_MESSAGES,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}
