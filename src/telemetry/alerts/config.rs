//! The shape of `config/alerts.json`: named channels and the rules that send to them. H3 adds
//! the JSON Schema check, loading with file and JSON pointer in every problem, and the
//! cross-checks (a rule naming an unknown channel, a feature no config defines).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Severity;

/// `config/alerts.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// The channels, by name.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelConfig>,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
}

/// Where alerts go. Every secret is the *name* of an environment variable, read when an alert
/// is delivered, so the file holds none.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum ChannelConfig {
    /// A Slack incoming webhook (<https://api.slack.com/messaging/webhooks>).
    Slack {
        /// The variable holding the webhook URL.
        webhook_url_env: String,
    },
    /// PagerDuty Events API v2 (<https://developer.pagerduty.com/docs/events-api-v2/overview/>).
    Pagerduty {
        /// The variable holding the integration's routing key.
        routing_key_env: String,
        /// The events endpoint; `https://events.pagerduty.com/v2/enqueue` by default (tests
        /// and EU accounts set it).
        #[serde(default)]
        url: Option<String>,
    },
    /// A generic JSON webhook, signed with HMAC-SHA256 over `{timestamp}.{body}`.
    Webhook {
        /// The variable holding the URL.
        url_env: String,
        /// The variable holding the signing secret.
        secret_env: String,
    },
}

/// One alert rule: what fires, how bad, and where it goes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique name (`[a-z0-9_.-]+`), in dedup keys and messages.
    pub name: String,
    /// The condition.
    #[serde(flatten)]
    pub condition: Condition,
    /// How bad it is when it fires.
    pub severity: Severity,
    /// Channel names.
    pub channels: Vec<String>,
}

/// What a rule watches.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Condition {
    /// A budget crossed one of `thresholds` (percent; default every threshold the budget
    /// alerts at: 80, 90, 95, 100), optionally only for `scope` (`overall`, `feature:<name>`).
    Budget {
        /// Percentages that alert; every one the budget crosses when absent.
        #[serde(default)]
        thresholds: Option<Vec<u32>>,
        /// Only this budget scope (`overall`, `feature:<name>`); every scope when absent.
        #[serde(default)]
        scope: Option<String>,
    },
    /// A circuit breaker opened (resolved when it closes), optionally only `breaker`.
    BreakerOpen {
        /// Only this breaker (`openai`, `openai/gpt-4o`); every breaker when absent.
        #[serde(default)]
        breaker: Option<String>,
    },
    /// The share of a feature's requests that failed, over `window_seconds`, above `above`
    /// (0..1), once at least `min_requests` were seen in the window.
    ErrorRate {
        /// Only this feature; each feature on its own when absent.
        #[serde(default)]
        feature: Option<String>,
        /// The sliding window, in seconds.
        window_seconds: u64,
        /// The limit, a share between 0 and 1; the rule fires above it.
        above: f64,
        /// Requests the window must hold before the rule may fire (default 10).
        #[serde(default = "default_min_requests")]
        min_requests: u64,
    },
    /// A feature's p95 latency over `window_seconds` above `above_ms`.
    LatencyP95 {
        /// Only this feature; each feature on its own when absent.
        #[serde(default)]
        feature: Option<String>,
        /// The sliding window, in seconds.
        window_seconds: u64,
        /// The limit in milliseconds; the rule fires above it.
        above_ms: f64,
        /// Requests the window must hold before the rule may fire (default 10).
        #[serde(default = "default_min_requests")]
        min_requests: u64,
    },
    /// The share of a feature's structured answers that were invalid, over `window_seconds`.
    InvalidOutputRate {
        /// Only this feature; each feature on its own when absent.
        #[serde(default)]
        feature: Option<String>,
        /// The sliding window, in seconds.
        window_seconds: u64,
        /// The limit, a share between 0 and 1; the rule fires above it.
        above: f64,
        /// Requests the window must hold before the rule may fire (default 10).
        #[serde(default = "default_min_requests")]
        min_requests: u64,
    },
    /// An evaluation run (an `eval.run` line) that did not pass.
    EvaluationFailed {
        /// Only this feature; each feature on its own when absent.
        #[serde(default)]
        feature: Option<String>,
    },
}

fn default_min_requests() -> u64 {
    10
}
