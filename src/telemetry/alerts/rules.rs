//! Records to alerts: the rules of one `alerts.json` watch the telemetry records the engine
//! writes (on the alerts' own thread, never a request's) and return what fires or resolves,
//! already claimed once per rule, scope and period through [`Dedup`].
//!
//! - `budget`: a `budget.alert` line (the budget already fires each threshold once per window)
//!   -> a trigger scoped to the budget, period = the budget period's label plus the threshold;
//!   never resolved.
//! - `breaker_open`: `circuit.transition` to `open` (this process's breaker, or the fleet's
//!   hint: reason `fleet_open`) -> trigger with dedup key `prompt_config/{rule}/{breaker}`; back
//!   to `closed` -> resolve under the same key (only after a trigger). Period = when the
//!   opening ends (the transition's time plus `open_for_ms`, to [`BREAKER_PERIOD_MS`]): the
//!   same instant in every process of a fleet, however late each learns of the opening.
//! - `error_rate`, `latency_p95`, `invalid_output_rate`: per feature, a sliding window of
//!   `llm.request` lines (evaluation traffic excluded), holding at least `min_requests`; over
//!   the limit -> trigger, period = the window's start rounded down to the window (RFC 3339);
//!   back under (or the window emptied, on [`AlertRules::tick`]) -> resolve.
//! - `evaluation_failed`: an `eval.run` line with `passed: false` -> trigger, scope
//!   `feature@version`, period = the run id; never resolved.


use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

use super::config::{AlertsConfig, Condition, RuleConfig};
use super::dedup::{ClaimKey, Dedup};
use super::window::{Sample, Totals, Window};
use super::{Alert, AlertAction};
use crate::telemetry::event::{
    BudgetFields, CircuitFields, EvalRunFields, EventBody, RequestFields, TelemetryRecord,
};

/// The granularity of a breaker alert's period, ms: coarse enough that the processes of a
/// fleet, whose clocks and hint reads differ by milliseconds, name the same opening alike.
pub const BREAKER_PERIOD_MS: i64 = 10_000;
/// How long a budget claim lasts: past the longest budget period (a month).
const BUDGET_CLAIM: Duration = Duration::from_secs(32 * 24 * 3600);
/// How long a breaker or evaluation claim lasts: long enough for every process to see it.
const EVENT_CLAIM: Duration = Duration::from_secs(24 * 3600);

/// The rules of one `alerts.json` and their windows; lives on the alerts thread.
#[derive(Debug)]
pub struct AlertRules {
    rules: Vec<RuleState>,
    dedup: Dedup,
}

#[derive(Debug)]
struct RuleState {
    rule: RuleConfig,
    /// Windows by feature (rate and latency rules only).
    windows: HashMap<String, Window>,
    /// What is triggered and not yet resolved, by scope: its period and dedup key.
    firing: HashMap<String, Firing>,
}

#[derive(Debug, Clone)]
struct Firing {
    period: String,
    dedup_key: String,
}

/// One measured value of a window rule against its limit.
struct Reading {
    value: f64,
    limit: f64,
    over: bool,
}

impl AlertRules {
    /// The rules of `config`, firing each alert once per rule, scope and period as `dedup`
    /// decides (this process, or the fleet on Redis).
    pub fn new(config: &AlertsConfig, dedup: Dedup) -> AlertRules {
        let rules = config
            .rules
            .iter()
            .map(|rule| RuleState {
                rule: rule.clone(),
                windows: HashMap::new(),
                firing: HashMap::new(),
            })
            .collect();
        AlertRules { rules, dedup }
    }

    /// The alerts `record` fires or resolves, already claimed (each returned once).
    /// An alert's `fired_at` is the record's timestamp: the engine's clock when it wrote it.
    pub fn observe(&mut self, record: &TelemetryRecord) -> Vec<Alert> {
        let now = record.timestamp;
        let mut alerts = Vec::new();
        for state in &mut self.rules {
            let candidates = match (&state.rule.condition, &record.body) {
                (Condition::Budget { thresholds, scope }, EventBody::BudgetAlert(fields)) => {
                    budget(&state.rule, thresholds.as_deref(), scope.as_deref(), fields, now)
                }
                (Condition::BreakerOpen { breaker }, EventBody::CircuitTransition(fields)) => {
                    let only = breaker.clone();
                    state.breaker(only.as_deref(), fields, record.timestamp, now)
                }
                (Condition::EvaluationFailed { feature }, EventBody::EvalRun(fields)) => {
                    evaluation(&state.rule, feature.as_deref(), fields, now)
                }
                (condition, EventBody::Request(fields)) if window_of(condition).is_some() => {
                    state.request(fields, record.timestamp, now)
                }
                _ => Vec::new(),
            };
            alerts.extend(
                candidates
                    .into_iter()
                    .filter_map(|(alert, ttl)| claim(&self.dedup, alert, ttl)),
            );
        }
        alerts
    }

    /// The alerts that time passing fires or resolves (a window emptied), at `now`.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        let mut alerts = Vec::new();
        for state in &mut self.rules {
            if window_of(&state.rule.condition).is_none() {
                continue;
            }
            let features: Vec<String> = state.windows.keys().cloned().collect();
            for feature in features {
                let Some(window) = state.windows.get_mut(&feature) else {
                    continue;
                };
                window.slide(now.timestamp_millis());
                let totals = window.totals();
                if window.is_empty() {
                    state.windows.remove(&feature);
                }
                alerts.extend(state.evaluate(&feature, &totals, now.timestamp_millis(), now));
            }
        }
        alerts
            .into_iter()
            .filter_map(|(alert, ttl)| claim(&self.dedup, alert, ttl))
            .collect()
    }
}

/// `alert` when this process (or, on Redis, the fleet) claims it first.
fn claim(dedup: &Dedup, alert: Alert, ttl: Duration) -> Option<Alert> {
    let key = ClaimKey {
        rule: alert.rule.clone(),
        scope: alert.scope.clone(),
        period: alert.period.clone(),
        action: alert.action,
    };
    dedup.claim(&key, ttl).then_some(alert)
}

/// `(window_seconds, min_requests)` of a window rule.
fn window_of(condition: &Condition) -> Option<(u64, u64)> {
    match condition {
        Condition::ErrorRate {
            window_seconds,
            min_requests,
            ..
        }
        | Condition::LatencyP95 {
            window_seconds,
            min_requests,
            ..
        }
        | Condition::InvalidOutputRate {
            window_seconds,
            min_requests,
            ..
        } => Some((*window_seconds, *min_requests)),
        _ => None,
    }
}

impl RuleState {
    fn request(
        &mut self,
        fields: &RequestFields,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<(Alert, Duration)> {
        let feature = &fields.feature.feature;
        // Evaluation traffic is not production: a failing dataset must not page anyone.
        if fields.feature.eval_run_id.is_some()
            || self.rule.condition.feature().is_some_and(|only| only != feature)
            || fields.outcome == "cancelled"
        {
            return Vec::new();
        }
        let Some((window_seconds, _)) = window_of(&self.rule.condition) else {
            return Vec::new();
        };
        let sample = Sample {
            error: fields.outcome != "success",
            latency_ms: fields.latency_ms,
            validated: fields.output.as_ref().map_or(0, |output| {
                output.invalid_outputs + u32::from(output.valid == Some(true))
            }),
            invalid: fields.output.as_ref().map_or(0, |output| output.invalid_outputs),
        };
        if matches!(self.rule.condition, Condition::InvalidOutputRate { .. })
            && sample.validated == 0
        {
            return Vec::new(); // no answer was validated: nothing to count
        }
        let at_ms = at.timestamp_millis();
        let window = self
            .windows
            .entry(feature.clone())
            .or_insert_with(|| Window::new(window_seconds));
        window.add(at_ms, sample);
        let totals = window.totals();
        self.evaluate(&feature.clone(), &totals, at_ms, now)
    }

    /// Trigger when over and not firing, resolve when firing and no longer over.
    fn evaluate(
        &mut self,
        feature: &str,
        totals: &Totals,
        at_ms: i64,
        now: DateTime<Utc>,
    ) -> Vec<(Alert, Duration)> {
        let Some((window_seconds, min_requests)) = window_of(&self.rule.condition) else {
            return Vec::new();
        };
        let counted = match self.rule.condition {
            Condition::InvalidOutputRate { .. } => totals.validated,
            _ => totals.requests,
        };
        let reading = match self.rule.condition {
            Condition::ErrorRate { above, .. } => (totals.error_rate(), above),
            Condition::LatencyP95 { above_ms, .. } => (totals.p95_ms(), above_ms),
            Condition::InvalidOutputRate { above, .. } => (totals.invalid_output_rate(), above),
            _ => return Vec::new(),
        };
        let reading = Reading {
            value: reading.0,
            limit: reading.1,
            over: counted >= min_requests && reading.0 > reading.1,
        };
        let width_ms = i64::try_from(window_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        let ttl = Duration::from_secs(window_seconds.saturating_mul(2).max(60));
        match (self.firing.get(feature).cloned(), reading.over) {
            (None, true) => {
                let start = (at_ms - width_ms).div_euclid(width_ms) * width_ms;
                let period = rfc3339_ms(start);
                let dedup_key = format!("prompt_config/{}/{feature}", self.rule.name);
                self.firing.insert(
                    feature.to_string(),
                    Firing {
                        period: period.clone(),
                        dedup_key: dedup_key.clone(),
                    },
                );
                let alert = self.window_alert(
                    AlertAction::Trigger,
                    feature,
                    period,
                    dedup_key,
                    &reading,
                    totals,
                    window_seconds,
                    now,
                );
                vec![(alert, ttl)]
            }
            (Some(firing), false) => {
                self.firing.remove(feature);
                let alert = self.window_alert(
                    AlertAction::Resolve,
                    feature,
                    firing.period,
                    firing.dedup_key,
                    &reading,
                    totals,
                    window_seconds,
                    now,
                );
                vec![(alert, ttl)]
            }
            _ => Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn window_alert(
        &self,
        action: AlertAction,
        feature: &str,
        period: String,
        dedup_key: String,
        reading: &Reading,
        totals: &Totals,
        window_seconds: u64,
        now: DateTime<Utc>,
    ) -> Alert {
        let mut figures = BTreeMap::from([
            ("requests".to_string(), json!(totals.requests)),
            ("window_seconds".to_string(), json!(window_seconds)),
        ]);
        let state = match action {
            AlertAction::Trigger => "above",
            AlertAction::Resolve => "back under",
        };
        let summary = match self.rule.condition {
            Condition::ErrorRate { .. } => {
                figures.insert("error_rate".into(), json!(reading.value));
                figures.insert("errors".into(), json!(totals.errors));
                figures.insert("above".into(), json!(reading.limit));
                format!(
                    "Error rate of {feature} {:.1}% over {window_seconds} s ({} of {} requests), {state} {:.1}%",
                    reading.value * 100.0,
                    totals.errors,
                    totals.requests,
                    reading.limit * 100.0
                )
            }
            Condition::LatencyP95 { .. } => {
                figures.insert("p95_ms".into(), json!(reading.value));
                figures.insert("above_ms".into(), json!(reading.limit));
                format!(
                    "p95 latency of {feature} {:.0} ms over {window_seconds} s ({} requests), {state} {:.0} ms",
                    reading.value, totals.requests, reading.limit
                )
            }
            _ => {
                figures.insert("invalid_output_rate".into(), json!(reading.value));
                figures.insert("invalid_outputs".into(), json!(totals.invalid));
                figures.insert("answers_validated".into(), json!(totals.validated));
                figures.insert("above".into(), json!(reading.limit));
                format!(
                    "Invalid-output rate of {feature} {:.1}% over {window_seconds} s ({} of {} answers), {state} {:.1}%",
                    reading.value * 100.0,
                    totals.invalid,
                    totals.validated,
                    reading.limit * 100.0
                )
            }
        };
        self.alert(action, feature.to_string(), period, dedup_key, summary, figures, now)
    }

    fn breaker(
        &mut self,
        only: Option<&str>,
        fields: &CircuitFields,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<(Alert, Duration)> {
        if only.is_some_and(|only| only != fields.breaker) {
            return Vec::new();
        }
        let scope = fields.breaker.clone();
        let opened = fields.to == "open";
        let closed = fields.to == "closed";
        let mut figures = BTreeMap::from([
            ("breaker".to_string(), json!(fields.breaker)),
            ("from".to_string(), json!(fields.from)),
            ("to".to_string(), json!(fields.to)),
            ("reason".to_string(), json!(fields.reason)),
        ]);
        if let Some(open_for_ms) = fields.open_for_ms {
            figures.insert("open_for_ms".into(), json!(open_for_ms));
        }
        match (self.firing.get(&scope).cloned(), opened, closed) {
            (None, true, _) => {
                // The process whose breaker opened writes `open_for_ms` = the whole opening;
                // the others, learning of it later from the fleet's hint, the time left of it:
                // time + open_for_ms is the one instant they all share. Without it, the time.
                let until = at.timestamp_millis()
                    + fields
                        .open_for_ms
                        .and_then(|ms| i64::try_from(ms).ok())
                        .unwrap_or(0);
                let period = rfc3339_ms(until.div_euclid(BREAKER_PERIOD_MS) * BREAKER_PERIOD_MS);
                let dedup_key = format!("prompt_config/{}/{scope}", self.rule.name);
                self.firing.insert(
                    scope.clone(),
                    Firing {
                        period: period.clone(),
                        dedup_key: dedup_key.clone(),
                    },
                );
                let summary = format!(
                    "Circuit breaker {scope} opened ({}): requests skip it{}",
                    fields.reason,
                    fields
                        .open_for_ms
                        .map(|ms| format!(" for {:.0} s", ms as f64 / 1000.0))
                        .unwrap_or_default()
                );
                let alert = self.alert(
                    AlertAction::Trigger,
                    scope,
                    period,
                    dedup_key,
                    summary,
                    figures,
                    now,
                );
                vec![(alert, EVENT_CLAIM)]
            }
            (Some(firing), _, true) => {
                self.firing.remove(&scope);
                let summary = format!("Circuit breaker {scope} closed: requests reach it again");
                let alert = self.alert(
                    AlertAction::Resolve,
                    scope,
                    firing.period,
                    firing.dedup_key,
                    summary,
                    figures,
                    now,
                );
                vec![(alert, EVENT_CLAIM)]
            }
            _ => Vec::new(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn alert(
        &self,
        action: AlertAction,
        scope: String,
        period: String,
        dedup_key: String,
        summary: String,
        figures: BTreeMap<String, Value>,
        now: DateTime<Utc>,
    ) -> Alert {
        make_alert(&self.rule, action, scope, period, dedup_key, summary, figures, now)
    }
}

#[allow(clippy::too_many_arguments)]
fn make_alert(
    rule: &RuleConfig,
    action: AlertAction,
    scope: String,
    period: String,
    dedup_key: String,
    summary: String,
    figures: BTreeMap<String, Value>,
    now: DateTime<Utc>,
) -> Alert {
    Alert {
        rule: rule.name.clone(),
        rule_type: rule.condition.type_name(),
        severity: rule.severity,
        action,
        scope,
        period,
        dedup_key,
        summary,
        figures,
        channels: rule.channels.clone(),
        fired_at: now,
    }
}

fn budget(
    rule: &RuleConfig,
    thresholds: Option<&[u32]>,
    only: Option<&str>,
    fields: &BudgetFields,
    now: DateTime<Utc>,
) -> Vec<(Alert, Duration)> {
    if only.is_some_and(|only| only != fields.scope)
        || thresholds.is_some_and(|listed| !listed.contains(&fields.threshold_percent))
    {
        return Vec::new();
    }
    let percent = if fields.limit_usd > 0.0 {
        fields.spent_usd / fields.limit_usd * 100.0
    } else {
        f64::from(fields.threshold_percent)
    };
    let figures = BTreeMap::from([
        ("spent_usd".to_string(), json!(fields.spent_usd)),
        ("limit_usd".to_string(), json!(fields.limit_usd)),
        ("percent".to_string(), json!(percent)),
        (
            "threshold_percent".to_string(),
            json!(fields.threshold_percent),
        ),
        ("budget_period".to_string(), json!(fields.period)),
        ("policy".to_string(), json!(fields.policy)),
    ]);
    let summary = format!(
        "Budget {}/{} at {}%: ${} of ${}",
        fields.scope,
        fields.period,
        fields.threshold_percent,
        dollars(fields.spent_usd),
        dollars(fields.limit_usd)
    );
    // Each threshold of a period is its own alert (80% and then 100% both go out).
    let period = format!("{}@{}%", fields.period_start, fields.threshold_percent);
    let dedup_key = format!("prompt_config/{}/{}/{period}", rule.name, fields.scope);
    let alert = make_alert(
        rule,
        AlertAction::Trigger,
        fields.scope.clone(),
        period,
        dedup_key,
        summary,
        figures,
        now,
    );
    vec![(alert, BUDGET_CLAIM)]
}

fn evaluation(
    rule: &RuleConfig,
    only: Option<&str>,
    fields: &EvalRunFields,
    now: DateTime<Utc>,
) -> Vec<(Alert, Duration)> {
    if fields.passed || only.is_some_and(|only| only != fields.feature) {
        return Vec::new();
    }
    let scope = format!("{}@{}", fields.feature, fields.version);
    let figures = BTreeMap::from([
        ("run_id".to_string(), json!(fields.run_id)),
        ("dataset".to_string(), json!(fields.dataset)),
        ("cases_total".to_string(), json!(fields.cases_total)),
        ("cases_passed".to_string(), json!(fields.cases_passed)),
        ("pass_rate".to_string(), json!(fields.pass_rate)),
        ("min_pass_rate".to_string(), json!(fields.min_pass_rate)),
        ("errors".to_string(), json!(fields.errors)),
    ]);
    let summary = format!(
        "Evaluation {} of {scope} on {} failed: {} of {} cases passed ({:.1}%, needs {:.1}%)",
        fields.run_id,
        fields.dataset,
        fields.cases_passed,
        fields.cases_total,
        fields.pass_rate * 100.0,
        fields.min_pass_rate * 100.0
    );
    let dedup_key = format!("prompt_config/{}/{scope}/{}", rule.name, fields.run_id);
    let alert = make_alert(
        rule,
        AlertAction::Trigger,
        scope,
        fields.run_id.clone(),
        dedup_key,
        summary,
        figures,
        now,
    );
    vec![(alert, EVENT_CLAIM)]
}

/// An amount in USD for a summary: cents from $1 up, else four decimals, so a small budget's
/// spend ($0.0049 of $0.01) does not read as $0.00.
fn dollars(usd: f64) -> String {
    if usd.abs() >= 1.0 {
        format!("{usd:.2}")
    } else {
        format!("{usd:.4}")
    }
}

/// `2026-12-01T10:15:00.000Z` for ms since the epoch.
fn rfc3339_ms(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}
