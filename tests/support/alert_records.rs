//! Crafted telemetry records for the alert rules (issue 15): `llm.request` lines of a chosen
//! feature, outcome, latency, structured-output result and time; `budget.alert`,
//! `circuit.transition` and `eval.run` lines; and the alerts.json rules that watch them.

#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use prompt_config::telemetry::alerts::Severity;
use prompt_config::telemetry::alerts::config::{
    AlertsConfig, ChannelConfig, Condition, RuleConfig,
};
use prompt_config::telemetry::event::{
    BudgetFields, CircuitFields, EvalRunFields, EventBody, RequestOutputFields, TelemetryRecord,
};

use super::telemetry_records::request_record;

/// 2026-12-01T10:00:00Z plus `seconds`.
pub fn at(seconds: f64) -> DateTime<Utc> {
    let base = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
    base + chrono::Duration::milliseconds((seconds * 1000.0) as i64)
}

/// An `llm.request` of `feature` ending at `when` with `outcome` after `latency_ms`.
pub fn request(
    feature: &str,
    when: DateTime<Utc>,
    outcome: &'static str,
    latency_ms: f64,
) -> TelemetryRecord {
    let mut record = request_record(when.timestamp_millis() as u64);
    record.timestamp = when;
    let EventBody::Request(fields) = &mut record.body else {
        unreachable!()
    };
    fields.feature.feature = feature.to_string();
    fields.outcome = outcome;
    fields.error_type = (outcome == "error").then(|| "all_providers_failed".to_string());
    fields.latency_ms = latency_ms;
    record
}

/// A successful request of `feature` at `when`.
pub fn ok(feature: &str, when: DateTime<Utc>) -> TelemetryRecord {
    request(feature, when, "success", 800.0)
}

/// A failed request of `feature` at `when`.
pub fn failed(feature: &str, when: DateTime<Utc>) -> TelemetryRecord {
    request(feature, when, "error", 800.0)
}

/// `record` marked as traffic of evaluation run `run_id`.
pub fn in_eval(mut record: TelemetryRecord, run_id: &str) -> TelemetryRecord {
    if let EventBody::Request(fields) = &mut record.body {
        fields.feature.eval_run_id = Some(run_id.to_string());
    }
    record
}

/// A structured request of `feature` at `when` whose answers were invalid `invalid` times and
/// then valid (`valid`) or not.
pub fn structured(
    feature: &str,
    when: DateTime<Utc>,
    invalid: u32,
    valid: bool,
) -> TelemetryRecord {
    let mut record = request(
        feature,
        when,
        if valid { "success" } else { "error" },
        900.0,
    );
    if let EventBody::Request(fields) = &mut record.body {
        fields.output = Some(RequestOutputFields {
            schema: true,
            valid: Some(valid),
            repairs: invalid,
            invalid_outputs: invalid,
            tool_calls: None,
            data: None,
        });
    }
    record
}

/// A `budget.alert` line: `scope` crossed `threshold` percent on day `day`.
pub fn budget_alert(
    scope: &str,
    day: &str,
    threshold: u32,
    spent_usd: f64,
    limit_usd: f64,
) -> TelemetryRecord {
    record(
        "budget.alert",
        at(0.0),
        EventBody::BudgetAlert(BudgetFields {
            scope: scope.to_string(),
            period: "day".to_string(),
            period_start: day.to_string(),
            threshold_percent: threshold,
            spent_usd,
            limit_usd,
            policy: "block".to_string(),
        }),
    )
}

/// A `circuit.transition` of `breaker` from `from` to `to` at `when`.
pub fn transition(
    breaker: &str,
    from: &'static str,
    to: &'static str,
    when: DateTime<Utc>,
) -> TelemetryRecord {
    record(
        "circuit.transition",
        when,
        EventBody::CircuitTransition(CircuitFields {
            breaker: breaker.to_string(),
            from,
            to,
            reason: "5 failures in 10 s".to_string(),
            open_for_ms: (to == "open").then_some(30_000),
        }),
    )
}

/// An `eval.run` line of `feature`@`version` in run `run_id`.
pub fn eval_run(run_id: &str, feature: &str, version: &str, passed: bool) -> TelemetryRecord {
    let (cases_passed, cases_total) = if passed { (10, 10) } else { (7, 10) };
    record(
        "eval.run",
        at(0.0),
        EventBody::EvalRun(Box::new(EvalRunFields {
            run_id: run_id.to_string(),
            feature: feature.to_string(),
            version: version.to_string(),
            dataset: "golden".to_string(),
            provider: Some("mock".to_string()),
            model: Some("m".to_string()),
            model_override: false,
            mock: true,
            repeat: 1,
            concurrency: 4,
            duration_ms: 1200.0,
            cases_total,
            cases_passed,
            pass_rate: cases_passed as f64 / cases_total as f64,
            min_pass_rate: 0.9,
            passed,
            mean_score: None,
            cost_usd: 0.0,
            judge_cost_usd: 0.0,
            latency_p50_ms: 10.0,
            latency_p95_ms: 20.0,
            invalid_output_rate: 0.0,
            errors: 0,
            skipped_assertions: 0,
            comparison: None,
        })),
    )
}

fn record(event: &'static str, when: DateTime<Utc>, body: EventBody) -> TelemetryRecord {
    let mut record = request_record(1);
    record.event = event;
    record.timestamp = when;
    record.request_id = String::new();
    record.body = body;
    record
}

/// A rule named `name` of `condition` going to channel `team`.
pub fn rule(name: &str, condition: Condition) -> RuleConfig {
    RuleConfig {
        name: name.to_string(),
        condition,
        severity: Severity::Error,
        channels: vec!["team".to_string()],
    }
}

/// An alerts config of `rules` with one Slack channel `team`.
pub fn config(rules: Vec<RuleConfig>) -> AlertsConfig {
    AlertsConfig {
        channels: [(
            "team".to_string(),
            ChannelConfig::Slack {
                webhook_url_env: "SLACK_URL".to_string(),
            },
        )]
        .into(),
        rules,
    }
}
