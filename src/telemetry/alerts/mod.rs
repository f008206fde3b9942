//! Alerts (issue 15): rules read from `config/alerts.json` watch the same telemetry records as
//! the log (budget thresholds, a breaker opening, a feature's error rate, p95 latency or
//! invalid-output rate over a window, a failed evaluation run) and send what fires to Slack,
//! PagerDuty (Events API v2, trigger and resolve under one dedup key) and signed JSON webhooks.
//! Rules are evaluated and alerts delivered on the alerts' own background thread, with retries
//! and backoff; a channel that keeps failing is reported in telemetry and metrics, never raised
//! into a request. Each alert fires once per rule, scope and period, across the fleet with the
//! Redis backend. Channel secrets come from environment variables and appear nowhere else.
//!
//! - `config.rs`: the file's shape, its JSON Schema (`config/schema/alerts_schema.json`) and
//!   the checks that name file and JSON pointer.
//! - `rules.rs`, `window.rs`, `dedup.rs`: records to [`Alert`]s, once per rule/scope/period.
//! - `channel.rs`, `slack.rs`, `pagerduty.rs`, `webhook.rs`, `delivery.rs`: payloads and the
//!   delivery thread.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub(crate) mod channel;
pub mod config;
mod courier;
internal_mod!(dedup);
pub(crate) mod delivery;
mod pagerduty;
internal_mod!(rules);
pub(crate) mod sink;
mod slack;
mod test_alert;
mod webhook;
internal_mod!(window);

pub use test_alert::{TestAlerts, TestDelivery};

/// How bad an alert is: PagerDuty Events API v2's severities
/// (<https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Severity {
    /// Informational.
    Info,
    /// Needs attention soon.
    Warning,
    /// Something is failing.
    Error,
    /// Wake someone up.
    Critical,
}

impl Severity {
    /// `info`, `warning`, `error` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
}

/// Whether an alert opens or closes an incident (PagerDuty's `event_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertAction {
    /// The condition started (a breaker opened, a rate went over its limit).
    Trigger,
    /// The condition ended (the breaker closed, the rate came back under): resolves the
    /// incident the trigger with the same `dedup_key` opened.
    Resolve,
}

impl AlertAction {
    /// `trigger` or `resolve`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertAction::Trigger => "trigger",
            AlertAction::Resolve => "resolve",
        }
    }
}

/// One alert to deliver: what every channel formats its payload from. Holds no secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// The rule's name in `alerts.json`.
    pub rule: String,
    /// The rule's type (`budget`, `breaker_open`, `error_rate`, `latency_p95`,
    /// `invalid_output_rate`, `evaluation_failed`, or `test` for `prompt-config alerts test`).
    pub rule_type: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// Trigger or resolve.
    pub action: AlertAction,
    /// What it is about: `overall` / `feature:<name>` for budgets, the breaker's name, the
    /// feature (or `feature@version`) for rates and evaluations.
    pub scope: String,
    /// The period it fires once in: the budget's `2026-12-01` / `2026-12`, the window's start
    /// (RFC 3339) for rates, the opening's time for a breaker.
    pub period: String,
    /// Identifies the incident from trigger to resolve (PagerDuty's `dedup_key`):
    /// `prompt_config/{rule}/{scope}`, plus the period for alerts that never resolve.
    pub dedup_key: String,
    /// One line for people: `Budget overall/day at 90%: $9.12 of $10.00`.
    pub summary: String,
    /// The figures behind it, by name (`spent_usd`, `limit_usd`, `error_rate`, `p95_ms`,
    /// `requests`, `window_seconds`, ...): Slack fields, PagerDuty `custom_details`.
    pub figures: BTreeMap<String, Value>,
    /// The channels (names in `alerts.json`) it goes to.
    pub channels: Vec<String>,
    /// When it fired, from the engine's clock.
    pub fired_at: DateTime<Utc>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;

    /// An error-rate trigger with two figures, for the payload tests.
    pub(crate) fn sample_alert() -> Alert {
        Alert {
            rule: "openai-errors".into(),
            rule_type: "error_rate",
            severity: Severity::Error,
            action: AlertAction::Trigger,
            scope: "summarise".into(),
            period: "2026-12-01T05:55:00Z".into(),
            dedup_key: "prompt_config/openai-errors/summarise".into(),
            summary: "summarise error rate 25% over 300 s (limit 10%)".into(),
            figures: BTreeMap::from([
                ("error_rate".to_string(), Value::from(0.25)),
                ("requests".to_string(), Value::from(40)),
            ]),
            channels: vec!["ops".into()],
            fired_at: Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap(),
        }
    }
}
