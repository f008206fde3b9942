//! `alert.sent` / `alert.failed` lines: what became of one alert on one channel, written by the
//! alerts' delivery thread. They name the channel, the rule and the incident's dedup key, with
//! the HTTP status or the transport failure; never a URL, routing key or signing secret.

use serde::Serialize;

/// `alert.sent` and `alert.failed` fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertDeliveryFields {
    /// The channel's name in `alerts.json`.
    #[serde(rename = "prompt_config.alert.channel")]
    pub channel: String,
    /// Its type: `slack`, `pagerduty` or `webhook`.
    #[serde(rename = "prompt_config.alert.channel_type")]
    pub channel_type: &'static str,
    /// The rule that fired (`test` for `prompt-config alerts test`).
    #[serde(rename = "prompt_config.alert.rule")]
    pub rule: String,
    /// The rule's type (`budget`, `breaker_open`, `error_rate`, ..., `test`).
    #[serde(rename = "prompt_config.alert.rule_type")]
    pub rule_type: &'static str,
    /// `info`, `warning`, `error` or `critical`.
    #[serde(rename = "prompt_config.alert.severity")]
    pub severity: &'static str,
    /// `trigger` or `resolve`.
    #[serde(rename = "prompt_config.alert.action")]
    pub action: &'static str,
    /// What the alert is about (`overall`, a breaker, a feature).
    #[serde(rename = "prompt_config.alert.scope")]
    pub scope: String,
    /// The incident's key from trigger to resolve.
    #[serde(rename = "prompt_config.alert.dedup_key")]
    pub dedup_key: String,
    /// HTTP requests made, retries included (0 when a secret variable was unset).
    #[serde(rename = "prompt_config.alert.attempts")]
    pub attempts: u32,
    /// The receiver's last HTTP status, when it answered.
    #[serde(
        rename = "http.response.status_code",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<u16>,
    /// Why it failed (`alert.failed` only): `the receiver answered HTTP 500`, `could not
    /// connect`, `environment variable X is not set`.
    #[serde(rename = "error.message", skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
