//! The alert rules on crafted records: each rule type fires (and, where it can, resolves) from
//! the records it watches; windows, `min_requests`, evaluation traffic and feature filters;
//! once per rule, scope and period through the in-memory claims.

use std::time::Duration;

use prompt_config::telemetry::alerts::config::Condition;
use prompt_config::telemetry::alerts::dedup::{ClaimKey, Dedup};
use prompt_config::telemetry::alerts::rules::AlertRules;
use prompt_config::telemetry::alerts::{Alert, AlertAction, Severity};
use prompt_config::telemetry::event::TelemetryRecord;
use serde_json::json;

use crate::support::alert_records::*;

fn rules(rules: Vec<prompt_config::telemetry::alerts::config::RuleConfig>) -> AlertRules {
    AlertRules::new(&config(rules), Dedup::new(None))
}

fn observe_all(rules: &mut AlertRules, records: &[TelemetryRecord]) -> Vec<Alert> {
    records
        .iter()
        .flat_map(|record| rules.observe(record))
        .collect()
}

fn error_rate(
    feature: Option<&str>,
    window_seconds: u64,
    above: f64,
    min_requests: u64,
) -> Condition {
    Condition::ErrorRate {
        feature: feature.map(str::to_string),
        window_seconds,
        above,
        min_requests,
    }
}

/// `failures` failed then `successes` successful requests of `feature`, one a second from `from`.
fn traffic(feature: &str, from: f64, failures: usize, successes: usize) -> Vec<TelemetryRecord> {
    (0..failures + successes)
        .map(|index| {
            let when = at(from + index as f64);
            if index < failures {
                failed(feature, when)
            } else {
                ok(feature, when)
            }
        })
        .collect()
}

#[test]
fn a_budget_alert_line_fires_with_the_budgets_scope_period_and_figures() {
    let mut rules = rules(vec![rule(
        "spend",
        Condition::Budget {
            thresholds: None,
            scope: None,
        },
    )]);
    let alerts = rules.observe(&budget_alert("overall", "2026-12-01", 90, 9.12, 10.0));
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!((alert.rule.as_str(), alert.rule_type), ("spend", "budget"));
    assert_eq!(alert.action, AlertAction::Trigger);
    assert_eq!(alert.severity, Severity::Error);
    assert_eq!(alert.scope, "overall");
    assert!(alert.period.starts_with("2026-12-01"), "{}", alert.period);
    assert_eq!(alert.channels, ["team"]);
    assert_eq!(alert.figures["spent_usd"], json!(9.12));
    assert_eq!(alert.figures["limit_usd"], json!(10.0));
    assert_eq!(alert.figures["threshold_percent"], json!(90));
    assert_eq!(alert.summary, "Budget overall/day at 90%: $9.12 of $10.00");
    let small = rules.observe(&budget_alert("demo", "2026-12-01", 90, 0.0049, 0.005));
    assert_eq!(
        small[0].summary, "Budget demo/day at 90%: $0.0049 of $0.0050",
        "a small budget's spend does not read as $0.00"
    );
    assert_eq!(
        alert.fired_at,
        at(0.0),
        "the record's time, from the engine's clock"
    );
}

#[test]
fn budget_thresholds_and_scope_filter_what_fires() {
    let mut rules = rules(vec![rule(
        "hard-limit",
        Condition::Budget {
            thresholds: Some(vec![100]),
            scope: Some("feature:ask".into()),
        },
    )]);
    assert!(
        rules
            .observe(&budget_alert("feature:ask", "2026-12-01", 90, 9.0, 10.0))
            .is_empty()
    );
    assert!(
        rules
            .observe(&budget_alert("overall", "2026-12-01", 100, 10.0, 10.0))
            .is_empty()
    );
    assert_eq!(
        rules
            .observe(&budget_alert("feature:ask", "2026-12-01", 100, 10.0, 10.0))
            .len(),
        1
    );
}

#[test]
fn each_budget_threshold_fires_once_per_period() {
    let mut rules = rules(vec![rule(
        "spend",
        Condition::Budget {
            thresholds: None,
            scope: None,
        },
    )]);
    let fired = observe_all(
        &mut rules,
        &[
            budget_alert("overall", "2026-12-01", 80, 8.0, 10.0),
            budget_alert("overall", "2026-12-01", 80, 8.1, 10.0),
            budget_alert("overall", "2026-12-01", 90, 9.0, 10.0),
            budget_alert("overall", "2026-12-02", 80, 8.0, 10.0),
        ],
    );
    let summaries: Vec<&str> = fired.iter().map(|alert| alert.summary.as_str()).collect();
    assert_eq!(
        summaries,
        [
            "Budget overall/day at 80%: $8.00 of $10.00",
            "Budget overall/day at 90%: $9.00 of $10.00",
            "Budget overall/day at 80%: $8.00 of $10.00"
        ]
    );
    assert!(
        fired
            .iter()
            .all(|alert| alert.action == AlertAction::Trigger)
    );
}

#[test]
fn a_breaker_opening_triggers_and_its_closing_resolves_under_one_dedup_key() {
    let mut rules = rules(vec![rule("down", Condition::BreakerOpen { breaker: None })]);
    let opened = rules.observe(&transition("openai", "closed", "open", at(5.0)));
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].action, AlertAction::Trigger);
    assert_eq!(opened[0].dedup_key, "prompt_config/down/openai");
    assert_eq!(opened[0].scope, "openai");
    // Opened at 10:00:05 for 30 s: the opening ends at 10:00:35, to 10 s.
    assert_eq!(opened[0].period, "2026-12-01T10:00:30.000Z");
    assert!(
        rules
            .observe(&transition("openai", "open", "half_open", at(35.0)))
            .is_empty()
    );
    assert!(
        rules
            .observe(&transition("openai", "half_open", "open", at(36.0)))
            .is_empty()
    );
    let closed = rules.observe(&transition("openai", "half_open", "closed", at(70.0)));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].action, AlertAction::Resolve);
    assert_eq!(closed[0].dedup_key, opened[0].dedup_key);
    assert_eq!(closed[0].period, opened[0].period);
}

#[test]
fn a_breaker_that_closes_without_a_trigger_resolves_nothing() {
    let mut rules = rules(vec![rule(
        "down",
        Condition::BreakerOpen {
            breaker: Some("anthropic".into()),
        },
    )]);
    assert!(
        rules
            .observe(&transition("openai", "closed", "open", at(0.0)))
            .is_empty()
    );
    assert!(
        rules
            .observe(&transition("openai", "half_open", "closed", at(9.0)))
            .is_empty()
    );
    assert!(
        rules
            .observe(&transition("anthropic", "half_open", "closed", at(9.0)))
            .is_empty()
    );
}

#[test]
fn a_fleet_opened_breaker_triggers_and_its_fleet_closing_resolves() {
    let mut rules = rules(vec![rule("down", Condition::BreakerOpen { breaker: None })]);
    let opened = rules.observe(&fleet_transition("openai", "open", at(0.0), Some(30_000)));
    assert_eq!(opened[0].action, AlertAction::Trigger);
    let closed = rules.observe(&fleet_transition("openai", "closed", at(9.0), None));
    assert_eq!(closed[0].action, AlertAction::Resolve);
}

#[test]
fn processes_learning_of_one_opening_at_different_times_deliver_it_once() {
    let dedup = Dedup::new(None);
    let config = config(vec![rule("down", Condition::BreakerOpen { breaker: None })]);
    let mut opener = AlertRules::new(&config, dedup.clone());
    let mut late = AlertRules::new(&config, dedup);
    // Opened at 10:00:05 for 30 s; another process reads the fleet's hint 12 s later.
    let first = opener.observe(&transition("openai", "closed", "open", at(5.0)));
    let second = late.observe(&fleet_transition("openai", "open", at(17.0), Some(18_003)));
    assert_eq!(first.len() + second.len(), 1, "{first:?} {second:?}");
    assert_eq!(first[0].period, "2026-12-01T10:00:30.000Z");
}

#[test]
fn an_error_rate_fires_only_once_the_window_holds_min_requests() {
    let mut rules = rules(vec![rule("errors", error_rate(None, 300, 0.1, 10))]);
    let nine_failures = traffic("ask", 0.0, 9, 0);
    assert!(
        observe_all(&mut rules, &nine_failures).is_empty(),
        "9 < min_requests"
    );
    let fired = rules.observe(&failed("ask", at(9.0)));
    assert_eq!(fired.len(), 1);
    let alert = &fired[0];
    assert_eq!(
        (alert.rule_type, alert.scope.as_str()),
        ("error_rate", "ask")
    );
    assert_eq!(alert.dedup_key, "prompt_config/errors/ask");
    assert_eq!(alert.figures["requests"], json!(10));
    assert_eq!(alert.figures["error_rate"], json!(1.0));
    assert_eq!(alert.figures["window_seconds"], json!(300));
    assert!(!alert.summary.contains('\n'));
    assert!(
        alert
            .summary
            .starts_with("Error rate of ask 100.0% over 300 s (10 of 10 requests)"),
        "{}",
        alert.summary
    );
}

#[test]
fn an_error_rate_at_or_under_the_limit_does_not_fire() {
    let mut rules = rules(vec![rule("errors", error_rate(None, 300, 0.1, 10))]);
    // Successes first: the rate climbs to exactly 10% (2 of 20), never above.
    let mut records = traffic("ask", 0.0, 0, 18);
    records.extend(traffic("ask", 18.0, 2, 0));
    assert!(observe_all(&mut rules, &records).is_empty());
}

#[test]
fn an_error_rate_fires_once_while_over_and_resolves_when_back_under() {
    let mut rules = rules(vec![rule("errors", error_rate(None, 300, 0.2, 10))]);
    let over = observe_all(&mut rules, &traffic("ask", 0.0, 10, 0));
    assert_eq!(over.len(), 1, "once while over: {over:?}");
    // 10 failures of 50 is 20%: no longer above 20%.
    let back = observe_all(&mut rules, &traffic("ask", 10.0, 0, 40));
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].action, AlertAction::Resolve);
    assert_eq!(back[0].dedup_key, over[0].dedup_key);
    assert_eq!(back[0].period, over[0].period);
}

#[test]
fn the_period_of_a_window_alert_is_the_window_start_rounded_to_the_window() {
    let mut rules = rules(vec![rule("errors", error_rate(None, 60, 0.5, 1))]);
    let fired = rules.observe(&failed("ask", at(150.0)));
    // 10:02:30 - 60 s = 10:01:30, rounded down to the minute.
    assert_eq!(fired[0].period, "2026-12-01T10:01:00.000Z");
}

#[test]
fn failures_that_slide_out_of_the_window_resolve_on_tick() {
    let mut rules = rules(vec![rule("errors", error_rate(None, 60, 0.5, 5))]);
    assert_eq!(observe_all(&mut rules, &traffic("ask", 0.0, 5, 0)).len(), 1);
    assert!(rules.tick(at(30.0)).is_empty(), "still in the window");
    let resolved = rules.tick(at(200.0));
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].action, AlertAction::Resolve);
    assert!(rules.tick(at(300.0)).is_empty(), "resolved once");
}

#[test]
fn old_failures_do_not_count_against_a_later_window() {
    let mut rules = rules(vec![rule("errors", error_rate(None, 60, 0.5, 5))]);
    let mut records = traffic("ask", 0.0, 4, 0);
    records.extend(traffic("ask", 120.0, 1, 4));
    assert!(observe_all(&mut rules, &records).is_empty());
}

#[test]
fn evaluation_traffic_is_ignored() {
    let mut rules = rules(vec![rule("errors", error_rate(None, 300, 0.1, 5))]);
    let eval: Vec<TelemetryRecord> = traffic("ask", 0.0, 20, 0)
        .into_iter()
        .map(|record| in_eval(record, "run_1"))
        .collect();
    assert!(observe_all(&mut rules, &eval).is_empty());
}

#[test]
fn a_rule_for_one_feature_ignores_the_others_and_features_are_scoped_apart() {
    let mut only = rules(vec![rule("errors", error_rate(Some("ask"), 300, 0.1, 5))]);
    assert!(observe_all(&mut only, &traffic("summarize", 0.0, 10, 0)).is_empty());

    let mut each = rules(vec![rule("errors", error_rate(None, 300, 0.1, 5))]);
    let mut records = traffic("summarize", 0.0, 5, 0);
    records.extend(traffic("ask", 0.0, 5, 0));
    let scopes: Vec<String> = observe_all(&mut each, &records)
        .into_iter()
        .map(|alert| alert.scope)
        .collect();
    assert_eq!(scopes, ["summarize", "ask"]);
}

#[test]
fn a_p95_latency_above_the_limit_fires_with_the_p95() {
    let mut rules = rules(vec![rule(
        "slow",
        Condition::LatencyP95 {
            feature: None,
            window_seconds: 300,
            above_ms: 2000.0,
            min_requests: 20,
        },
    )]);
    // 19 fast and 1 slow: p95 (the 19th of 20 by nearest rank) is fast.
    let mut records: Vec<TelemetryRecord> = (0..19)
        .map(|i| request("ask", at(f64::from(i)), "success", 500.0))
        .collect();
    records.push(request("ask", at(19.0), "success", 5000.0));
    assert!(
        observe_all(&mut rules, &records).is_empty(),
        "p95 is 500 ms"
    );
    let fired = rules.observe(&request("ask", at(20.0), "success", 5000.0));
    assert_eq!(fired.len(), 1, "2 slow of 21: p95 (the 20th) is slow");
    let p95 = fired[0].figures["p95_ms"].as_f64().unwrap();
    assert!((5000.0..=5250.0).contains(&p95), "{p95}");
    assert_eq!(fired[0].rule_type, "latency_p95");
}

#[test]
fn the_invalid_output_rate_counts_answers_validated_not_requests() {
    let mut rules = rules(vec![rule(
        "bad-json",
        Condition::InvalidOutputRate {
            feature: None,
            window_seconds: 300,
            above: 0.2,
            min_requests: 4,
        },
    )]);
    // Plain requests carry no output fields: not counted.
    assert!(observe_all(&mut rules, &traffic("ask", 0.0, 0, 10)).is_empty());
    // 1 invalid then valid: 1 of 2 answers invalid each.
    let fired = observe_all(
        &mut rules,
        &[
            structured("ask", at(20.0), 1, true),
            structured("ask", at(21.0), 1, true),
        ],
    );
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].figures["invalid_outputs"], json!(2));
    assert_eq!(fired[0].figures["answers_validated"], json!(4));
    assert_eq!(fired[0].figures["invalid_output_rate"], json!(0.5));
}

#[test]
fn a_failed_evaluation_run_fires_once_for_its_feature_version_and_run() {
    let mut rules = rules(vec![rule(
        "eval",
        Condition::EvaluationFailed { feature: None },
    )]);
    assert!(
        rules
            .observe(&eval_run("run_1", "ask", "v2", true))
            .is_empty()
    );
    let fired = rules.observe(&eval_run("run_2", "ask", "v3", false));
    assert_eq!(fired.len(), 1);
    assert_eq!(
        (fired[0].scope.as_str(), fired[0].period.as_str()),
        ("ask@v3", "run_2")
    );
    assert_eq!(fired[0].figures["cases_passed"], json!(7));
    assert!(
        rules
            .observe(&eval_run("run_2", "ask", "v3", false))
            .is_empty(),
        "once per run"
    );
    assert_eq!(
        rules.observe(&eval_run("run_3", "ask", "v3", false)).len(),
        1
    );
}

#[test]
fn an_evaluation_rule_for_one_feature_ignores_the_others() {
    let mut rules = rules(vec![rule(
        "eval",
        Condition::EvaluationFailed {
            feature: Some("ask".into()),
        },
    )]);
    assert!(
        rules
            .observe(&eval_run("run_1", "summarize", "v1", false))
            .is_empty()
    );
}

#[test]
fn records_no_rule_watches_fire_nothing() {
    let mut rules = rules(vec![rule(
        "eval",
        Condition::EvaluationFailed { feature: None },
    )]);
    assert!(observe_all(&mut rules, &traffic("ask", 0.0, 50, 0)).is_empty());
    assert!(
        rules
            .observe(&budget_alert("overall", "2026-12-01", 100, 10.0, 10.0))
            .is_empty()
    );
}

#[test]
fn two_rule_sets_sharing_one_dedup_deliver_each_alert_once() {
    let dedup = Dedup::new(None);
    let config = config(vec![rule(
        "spend",
        Condition::Budget {
            thresholds: None,
            scope: None,
        },
    )]);
    let mut first = AlertRules::new(&config, dedup.clone());
    let mut second = AlertRules::new(&config, dedup);
    let line = budget_alert("overall", "2026-12-01", 95, 9.5, 10.0);
    assert_eq!(first.observe(&line).len() + second.observe(&line).len(), 1);
}

#[test]
fn a_memory_claim_is_won_once_until_it_expires_and_a_resolve_is_claimed_apart() {
    let dedup = Dedup::new(None);
    let trigger = ClaimKey {
        rule: "down".into(),
        scope: "openai".into(),
        period: "2026-12-01T10:00:00.000Z".into(),
        action: AlertAction::Trigger,
    };
    let resolve = ClaimKey {
        action: AlertAction::Resolve,
        ..trigger.clone()
    };
    let ttl = Duration::from_millis(200);
    assert!(dedup.claim(&trigger, ttl));
    assert!(!dedup.claim(&trigger, ttl));
    assert!(dedup.claim(&resolve, ttl));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        dedup.claim(&trigger, ttl),
        "expired claims can be won again"
    );
}
