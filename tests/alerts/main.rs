//! Alerts (issue 15): rules from `alerts.json` fire on telemetry records and reach loopback
//! Slack, PagerDuty and webhook receivers: payload shapes, dedup keys, trigger/resolve pairs,
//! HMAC signatures, and once-only delivery across processes sharing a Redis.

#[path = "../support/mod.rs"]
mod support;

// H3: alert rules, alerts.json and once-per-fleet claims.
mod config;
mod fleet;
mod rules;
