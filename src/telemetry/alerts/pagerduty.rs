//! The PagerDuty Events API v2 payload of an alert
//! (<https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>): a trigger carries
//! `routing_key`, `event_action: "trigger"`, the `dedup_key` and a `payload` (summary, source,
//! severity, timestamp, component, group, class, custom_details); a resolve carries only
//! `routing_key`, `event_action: "resolve"` and the same `dedup_key`, which closes the incident
//! the trigger opened.

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use super::{Alert, AlertAction};

/// The Events API v2 endpoint, used unless the channel sets `url`.
pub(crate) const DEFAULT_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// PagerDuty's limit on `payload.summary`, in characters.
const SUMMARY_MAX_CHARS: usize = 1024;

/// PagerDuty's limit on `dedup_key`, in characters.
const DEDUP_KEY_MAX_CHARS: usize = 255;

/// The event to POST. `source` names the machine (see [`source`]).
pub(crate) fn payload(alert: &Alert, routing_key: &str, source: &str) -> Value {
    let dedup_key = super::slack::truncate(&alert.dedup_key, DEDUP_KEY_MAX_CHARS);
    if alert.action == AlertAction::Resolve {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let mut details = Map::new();
    details.insert("rule".into(), Value::from(alert.rule.as_str()));
    details.insert("scope".into(), Value::from(alert.scope.as_str()));
    details.insert("period".into(), Value::from(alert.period.as_str()));
    for (name, value) in &alert.figures {
        details.insert(name.clone(), value.clone());
    }
    let mut body = json!({
        "summary": super::slack::truncate(&alert.summary, SUMMARY_MAX_CHARS),
        "source": source,
        "severity": alert.severity.as_str(),
        "timestamp": alert.fired_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "component": "prompt_config",
        "class": alert.rule_type,
        "custom_details": details,
    });
    if let Some(group) = group(alert) {
        body["group"] = Value::from(group);
    }
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": body,
    })
}

/// The feature an alert is about, PagerDuty's `group`: `feature:<name>` budget scopes, and the
/// scope (without `@version`) of the per-feature rules; none for breakers and overall budgets.
fn group(alert: &Alert) -> Option<&str> {
    if let Some(feature) = alert.scope.strip_prefix("feature:") {
        return Some(feature);
    }
    match alert.rule_type {
        "error_rate" | "latency_p95" | "invalid_output_rate" | "evaluation_failed" => alert
            .scope
            .split('@')
            .next()
            .filter(|name| !name.is_empty()),
        _ => None,
    }
}

/// This machine's name, PagerDuty's `source`: `$HOSTNAME`, else `/etc/hostname`, else
/// `prompt_config` (a container without either still sends a valid event).
pub(crate) fn source() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "prompt_config".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::alerts::tests::sample_alert;
    use proptest::prelude::*;

    #[test]
    fn a_trigger_carries_the_payload_fields_of_events_api_v2() {
        let alert = sample_alert();
        let body = payload(&alert, "R0UT1NG", "web-1");
        assert_eq!(body["routing_key"], "R0UT1NG");
        assert_eq!(body["event_action"], "trigger");
        assert_eq!(body["dedup_key"], alert.dedup_key);
        let inner = &body["payload"];
        assert_eq!(inner["summary"], alert.summary);
        assert_eq!(inner["source"], "web-1");
        assert_eq!(inner["severity"], "error");
        assert_eq!(inner["component"], "prompt_config");
        assert_eq!(inner["class"], "error_rate");
        assert_eq!(inner["group"], "summarise");
        assert_eq!(inner["custom_details"]["error_rate"], 0.25);
        assert_eq!(inner["timestamp"], "2026-12-01T06:00:00.000Z");
    }

    #[test]
    fn a_resolve_carries_only_key_action_and_dedup_key() {
        let mut alert = sample_alert();
        alert.action = AlertAction::Resolve;
        let body = payload(&alert, "R0UT1NG", "web-1");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["routing_key", "event_action", "dedup_key"]);
        assert_eq!(body["event_action"], "resolve");
        assert_eq!(body["dedup_key"], alert.dedup_key);
    }

    #[test]
    fn a_breaker_alert_has_no_group() {
        let mut alert = sample_alert();
        alert.rule_type = "breaker_open";
        alert.scope = "openai".into();
        assert!(payload(&alert, "k", "s")["payload"].get("group").is_none());
    }

    proptest! {
        #[test]
        fn summary_and_dedup_key_stay_within_pagerduty_limits(summary in "\\PC{0,3000}", key in "\\PC{0,600}") {
            let mut alert = sample_alert();
            alert.summary = summary;
            alert.dedup_key = key;
            let body = payload(&alert, "k", "s");
            prop_assert!(body["payload"]["summary"].as_str().unwrap().chars().count() <= SUMMARY_MAX_CHARS);
            prop_assert!(body["dedup_key"].as_str().unwrap().chars().count() <= DEDUP_KEY_MAX_CHARS);
        }
    }
}
