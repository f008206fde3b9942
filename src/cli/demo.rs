//! `prompt-config demo`: the whole client on the shipped configuration with mock providers and
//! simulated time, so it needs no key or network and finishes in seconds. It sends traffic
//! across users (the experiment splits, healthcare users hit the targeting rule), stages an
//! OpenAI outage (the breaker opens, traffic fails over to Anthropic, a half-open probe fails,
//! then recovery), runs the feature's budget past its thresholds, sends requests to the JSON
//! version (a parsed answer, the invalid-output and repair rates), and prints a table per
//! provider, model and version.
//!
//! Every run tells the same story: it starts its telemetry file afresh (the engine restores
//! budget spend from the log it opens, so an earlier run's spend would change the figures), and
//! it rehearses silently first to learn how much simulated time the story takes, then starts
//! its clock that long before now, so no telemetry timestamp lies in the wall clock's future.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

use super::args::Dirs;
use super::{Failure, engine_options};
use prompt_config::client::{
    AttemptOutcome, BreakerState, ClientEvent, Clock, Completion, EventSink, ManualClock,
    SeededRandom,
};
use prompt_config::{Context, Engine};

const FEATURE: &str = "career_path_navigator";
/// Where the demo writes telemetry unless `--telemetry` says otherwise.
const DEFAULT_TELEMETRY: &str = "prompt_config_telemetry.jsonl";
const SECTORS: &[&str] = &["technology", "finance", "healthcare", "education", "retail"];
const DEGREES: &[&str] = &[
    "BSc Computer Science",
    "BA Economics",
    "BSc Nursing",
    "MEd",
    "BBA",
];

/// The indentation of every line inside a numbered step.
const INDENT: &str = "   ";

/// Prints client events as they happen, stamped with simulated time since the demo began
/// (silent during the rehearsal).
struct PrintingSink {
    clock: Arc<ManualClock>,
    quiet: bool,
    events: Mutex<Vec<ClientEvent>>,
}

impl EventSink for PrintingSink {
    fn emit(&self, _request_id: &str, event: &ClientEvent) {
        self.events.lock().push(event.clone());
        if self.quiet {
            return;
        }
        let at = self.clock.elapsed().as_secs_f64();
        match event {
            ClientEvent::CircuitTransition(transition) => say!(
                "{INDENT}[t={at:>6.1}s] circuit {}: {} -> {} ({}){}",
                transition.breaker,
                state_name(transition.from),
                state_name(transition.to),
                transition.reason,
                transition
                    .open_for_ms
                    .map(|ms| format!(", open for {} s", ms / 1000))
                    .unwrap_or_default()
            ),
            ClientEvent::BudgetAlert(alert) => say!(
                "{INDENT}[t={at:>6.1}s] budget {} {} at {}%: ${:.4} of ${:.2} ({})",
                alert.scope,
                alert.period,
                alert.threshold_percent,
                alert.spent_usd,
                alert.limit_usd,
                alert.policy
            ),
            // Kinds of event a later library version adds: the demo narrates these two.
            _ => {}
        }
    }
}

/// A breaker state as telemetry spells it: `closed`, `open`, `half_open`.
fn state_name(state: BreakerState) -> &'static str {
    state.as_str()
}

/// Figures of one provider, model and version.
#[derive(Default)]
struct Row {
    calls: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
    input_tokens: u64,
    output_tokens: u64,
    cost_usd: f64,
}

struct Demo {
    engine: Engine,
    clock: Arc<ManualClock>,
    /// The rehearsal prints nothing.
    quiet: bool,
    sent: usize,
    total: usize,
    failed: usize,
    downgraded: usize,
    /// Keyed by provider, model, version.
    rows: BTreeMap<(String, String, String), Row>,
}

/// Prints a line of the demo, unless it is the silent rehearsal.
macro_rules! tell {
    ($demo:expr, $($argument:tt)*) => {
        if !$demo.quiet {
            say!($($argument)*);
        }
    };
}

// After `tell!`, which it uses.
mod structured;

/// Runs `demo [--requests N] [--telemetry FILE]`; `total` is at least 40 (the parser checks).
pub fn run(dirs: &Dirs, total: usize, telemetry: Option<PathBuf>) -> Result<(), Failure> {
    let telemetry = telemetry.unwrap_or_else(|| PathBuf::from(DEFAULT_TELEMETRY));
    let now = chrono::Utc::now();
    let mut rehearsal = Demo::open(dirs, total, now, None)?;
    rehearsal.stage(total)?;
    let length = chrono::Duration::from_std(rehearsal.clock.elapsed()).unwrap_or_default();

    start_afresh(&telemetry)?;
    let mut demo = Demo::open(dirs, total, now - length, Some(&telemetry))?;
    say!("prompt-config demo: {total} requests of {FEATURE} on mock providers, in simulated time");
    demo.stage(total)?;
    demo.print_table();
    demo.engine.close();
    say!(
        "\ntelemetry: every request, attempt, breaker transition and budget alert of this run is in"
    );
    say!(
        "{INDENT}{} (started afresh on every run)",
        telemetry.display()
    );
    say!(
        "analyse it with: prompt-config stats {} --by feature,version,variant",
        telemetry.display()
    );
    Ok(())
}

/// Empties the demo's telemetry file, so this run neither reads nor adds to an earlier one.
fn start_afresh(telemetry: &Path) -> Result<(), Failure> {
    std::fs::File::create(telemetry).map(drop).map_err(|error| {
        Failure::failed(
            prompt_config::ErrorKind::Io,
            format!("cannot write {}: {error}", telemetry.display()),
            json!({"path": telemetry.display().to_string()}),
        )
    })
}

impl Demo {
    /// An engine on mock providers with a manual clock at `start`; without `telemetry` it is
    /// the silent rehearsal.
    fn open(
        dirs: &Dirs,
        total: usize,
        start: chrono::DateTime<chrono::Utc>,
        telemetry: Option<&Path>,
    ) -> Result<Demo, Failure> {
        let quiet = telemetry.is_none();
        let clock = Arc::new(ManualClock::new(start));
        let sink = Arc::new(PrintingSink {
            clock: Arc::clone(&clock),
            quiet,
            events: Mutex::new(Vec::new()),
        });
        let mut options = engine_options(dirs)
            .with_mock(true)
            .with_clock(Arc::clone(&clock) as Arc<dyn Clock>)
            .with_random(Arc::new(SeededRandom::new(42)))
            .with_event_sink(Arc::clone(&sink) as Arc<dyn EventSink>);
        match telemetry {
            Some(path) => options = options.with_telemetry(path),
            // The rehearsal only measures the story: it must not page anyone nor export a
            // second copy of every span, which the real run sends.
            None => {
                options.otlp = None;
                options = options.with_alerts(false);
            }
        }
        Ok(Demo {
            engine: Engine::open(options)?,
            clock,
            quiet,
            sent: 0,
            total,
            failed: 0,
            downgraded: 0,
            rows: BTreeMap::new(),
        })
    }

    fn stage(&mut self, total: usize) -> Result<(), Failure> {
        // Twelve outage requests (with their simulated latencies) fit inside one 30 s open
        // period, so the half-open probe comes in step 3 as announced.
        let (outage, recovery, json) = (12, total / 10, total / 10);
        let normal = total / 2 - outage;
        let budget = total - normal - outage - recovery - json - 2;

        tell!(
            self,
            "\n1. normal traffic: users across sectors; the experiment splits, healthcare users\n\
             {INDENT}hit the rule"
        );
        self.batch(normal, Duration::from_millis(250))?;

        let openai = self
            .engine
            .mock_provider("openai")
            .ok_or_else(|| Failure::invalid_argument("the demo needs the openai provider"))?;
        let open_ms = self
            .engine
            .snapshot()
            .providers()
            .providers
            .get("openai")
            .map_or(30_000, |spec| spec.circuit_breaker.open_ms);
        tell!(
            self,
            "\n2. openai outage: every call returns HTTP 503; traffic fails over to anthropic"
        );
        openai.start_outage(503);
        self.batch(outage, Duration::from_millis(250))?;

        tell!(
            self,
            "\n3. {} s later, still down: the half-open probe fails and the breaker reopens for\n\
             {INDENT}longer",
            open_ms / 1000
        );
        self.clock.advance(Duration::from_millis(open_ms));
        self.batch(1, Duration::from_secs(1))?;

        tell!(
            self,
            "\n4. openai recovers: the next probe succeeds and the breaker closes"
        );
        openai.end_outage();
        self.clock.advance(Duration::from_millis(open_ms * 2));
        self.batch(recovery + 1, Duration::from_millis(250))?;

        tell!(
            self,
            "\n5. budget: today's spend is restored to just under the feature's daily limit;\n\
             {INDENT}crossing 100% makes the downgrade policy move traffic to the cheaper chain"
        );
        if let Some(status) =
            self.engine.budget_status().into_iter().find(|status| {
                status.scope == format!("feature:{FEATURE}") && status.period == "day"
            })
        {
            let seeded = (status.limit_usd - status.settled_usd - 0.004).max(0.0);
            self.engine
                .restore_budget_spend(&status.scope, self.clock.utc_now(), seeded);
            tell!(
                self,
                "{INDENT}restored ${seeded:.4} of spend against the ${:.2} daily limit",
                status.limit_usd
            );
        }
        self.batch(budget, Duration::from_millis(250))?;
        self.structured(json)?;
        tell!(
            self,
            "\n{} requests: {} answered, {} failed, {} downgraded by the budget policy",
            self.sent,
            self.sent - self.failed,
            self.failed,
            self.downgraded
        );
        Ok(())
    }

    /// Sends `count` requests, `spacing` of simulated time apart, with a progress line.
    fn batch(&mut self, count: usize, spacing: Duration) -> Result<(), Failure> {
        for _ in 0..count {
            let context = demo_context(self.sent);
            self.sent += 1;
            match self.engine.complete(FEATURE, &context) {
                Ok(completion) => self.record(&completion),
                Err(error) => {
                    self.failed += 1;
                    if let prompt_config::Error::Complete(failure) = &error {
                        self.record_attempts(failure.attempts(), None, None);
                    } else {
                        return Err(error.into());
                    }
                }
            }
            self.clock.advance(spacing);
        }
        self.progress();
        Ok(())
    }

    /// The progress line: requests sent of the run's total.
    fn progress(&self) {
        let width = 30;
        let done = width * self.sent / self.total;
        tell!(
            self,
            "{INDENT}[{}{}] {}/{}",
            "#".repeat(done),
            ".".repeat(width - done),
            self.sent,
            self.total
        );
    }

    fn record(&mut self, completion: &Completion) {
        if completion.downgraded {
            self.downgraded += 1;
        }
        self.record_attempts(
            &completion.attempts,
            Some(&completion.resolution.version),
            Some(completion),
        );
    }

    fn record_attempts(
        &mut self,
        attempts: &[prompt_config::client::Attempt],
        version: Option<&str>,
        completion: Option<&Completion>,
    ) {
        let version = version.unwrap_or("-").to_string();
        for attempt in attempts {
            if matches!(
                attempt.outcome,
                AttemptOutcome::SkippedCircuitOpen | AttemptOutcome::SkippedRateLimited
            ) {
                continue;
            }
            let row = self
                .rows
                .entry((
                    attempt.provider.clone(),
                    attempt.model.clone(),
                    version.clone(),
                ))
                .or_default();
            row.calls += 1;
            row.latencies_ms.push(attempt.latency_ms);
            if attempt.outcome == AttemptOutcome::Failed {
                row.errors += 1;
            } else if attempt.outcome == AttemptOutcome::Success
                && let Some(completion) = completion
            {
                // The answering attempt carries the call's usage; an invalid answer before a
                // repair counts as a call of its own but its tokens are not in the completion.
                row.input_tokens += completion.usage.total_input_tokens();
                row.output_tokens += completion.usage.output_tokens;
                row.cost_usd += completion.cost_usd;
            }
        }
    }

    /// One row per provider, model and version that was tried; latencies in milliseconds.
    fn print_table(&mut self) {
        let model_width = self
            .rows
            .keys()
            .map(|(_, model, _)| model.len())
            .max()
            .unwrap_or(0)
            .max("model".len());
        say!(
            "\n{:<9} {:<model_width$} {:<7} {:>5} {:>6} {:>5} {:>5} {:>5} {:>6} {:>7} {:>9}",
            "provider",
            "model",
            "version",
            "calls",
            "failed",
            "p50",
            "p95",
            "p99",
            "in tok",
            "out tok",
            "cost $"
        );
        for ((provider, model, version), row) in &mut self.rows {
            row.latencies_ms.sort_by(f64::total_cmp);
            let percentile = |p: f64| nearest_rank(&row.latencies_ms, p);
            say!(
                "{:<9} {:<model_width$} {:<7} {:>5} {:>6} {:>5.0} {:>5.0} {:>5.0} {:>6} {:>7} {:>9.6}",
                provider,
                model,
                version,
                row.calls,
                row.errors,
                percentile(0.50),
                percentile(0.95),
                percentile(0.99),
                row.input_tokens,
                row.output_tokens,
                row.cost_usd
            );
        }
        say!(
            "calls: attempts sent; p50/p95/p99: their latency in ms; failed: attempts that failed"
        );
        say!(
            "{INDENT}and were then answered by failover to the next model of the chain \
             ({} of {} answered).",
            self.sent - self.failed,
            self.sent
        );
        let states: Vec<String> = self
            .engine
            .breaker_states()
            .into_iter()
            .map(|(name, state)| format!("{name} {}", state_name(state)))
            .collect();
        say!("\nbreakers now: {}", states.join(", "));
    }
}

/// The demo's `index`th request: users across sectors and degrees with a full profile (also
/// the load command's default traffic).
pub(super) fn demo_context(index: usize) -> Context {
    let sector = SECTORS[index % SECTORS.len()];
    let degree = DEGREES[(index / SECTORS.len()) % DEGREES.len()];
    Context::new(format!("demo-user-{index}"))
        .attribute("sector", sector)
        .attribute("degree", degree)
        .variable("current_role", "Analyst")
        .variable("degree", degree)
        .variable("skills", json!(["Excel", "SQL", "presenting"]))
        .variable("sector", sector)
        .variable("goals", "A role with more ownership within two years")
        .variable("years_experience", (index % 12) as u64)
}

/// The nearest-rank percentile of sorted values (0 when empty).
pub(super) fn nearest_rank(sorted: &[f64], percentile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (percentile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
