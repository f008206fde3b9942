//! `prompt-config demo`: the whole client on the shipped configuration with mock providers and
//! simulated time, so it needs no key or network and finishes in seconds. It sends traffic
//! across users (the experiment splits, healthcare users hit the targeting rule), stages an
//! OpenAI outage (the breaker opens, traffic fails over to Anthropic, a half-open probe fails,
//! then recovery), runs the feature's budget past its thresholds, and prints a table per
//! provider and version.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

use super::args::Args;
use super::{Failure, engine_options};
use prompt_config::client::{
    AttemptOutcome, ClientEvent, Clock, Completion, EventSink, ManualClock, SeededRandom,
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

/// Prints client events as they happen, stamped with simulated time since the demo began.
struct PrintingSink {
    clock: Arc<ManualClock>,
    events: Mutex<Vec<ClientEvent>>,
}

impl EventSink for PrintingSink {
    fn emit(&self, _request_id: &str, event: &ClientEvent) {
        let at = self.clock.elapsed().as_secs_f64();
        match event {
            ClientEvent::CircuitTransition(transition) => say!(
                "  [t={at:>6.1}s] circuit {}: {:?} -> {:?} ({}){}",
                transition.breaker,
                transition.from,
                transition.to,
                transition.reason,
                transition
                    .open_for_ms
                    .map(|ms| format!(", open for {} s", ms / 1000))
                    .unwrap_or_default()
            ),
            ClientEvent::BudgetAlert(alert) => say!(
                "  [t={at:>6.1}s] budget {} {} at {}%: ${:.4} of ${:.2} (policy {})",
                alert.scope,
                alert.period,
                alert.threshold_percent,
                alert.spent_usd,
                alert.limit_usd,
                alert.policy
            ),
        }
        self.events.lock().push(event.clone());
    }
}

/// Figures of one provider and version.
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
    sent: usize,
    total: usize,
    failed: usize,
    downgraded: usize,
    rows: BTreeMap<(String, String), Row>,
}

pub fn run(args: &Args) -> Result<(), Failure> {
    args.allow(&["config", "prompts", "requests", "telemetry"], &[])?;
    let total: usize = match args.value("requests") {
        Some(text) => text
            .parse()
            .map_err(|_| Failure::usage("--requests needs a number"))?,
        None => 200,
    };
    if total < 40 {
        return Err(Failure::usage(
            "--requests must be at least 40, to stage every phase",
        ));
    }
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let sink = Arc::new(PrintingSink {
        clock: Arc::clone(&clock),
        events: Mutex::new(Vec::new()),
    });
    let telemetry = args
        .value("telemetry")
        .unwrap_or(DEFAULT_TELEMETRY)
        .to_string();
    let options = engine_options(args)
        .with_telemetry(&telemetry)
        .with_mock(true)
        .with_clock(Arc::clone(&clock) as Arc<dyn Clock>)
        .with_random(Arc::new(SeededRandom::new(42)))
        .with_event_sink(Arc::clone(&sink) as Arc<dyn EventSink>);
    let engine = Engine::open(options)?;
    let mut demo = Demo {
        engine,
        clock,
        sent: 0,
        total,
        failed: 0,
        downgraded: 0,
        rows: BTreeMap::new(),
    };
    say!("prompt-config demo: {total} requests of {FEATURE} on mock providers, in simulated time");
    demo.stage(total)?;
    demo.print_table();
    demo.engine.close();
    say!(
        "\ntelemetry: every request, attempt, breaker transition and budget alert was appended to {telemetry}"
    );
    say!("analyse it with: prompt-config stats {telemetry} --by feature,version,variant");
    Ok(())
}

impl Demo {
    fn stage(&mut self, total: usize) -> Result<(), Failure> {
        // Twelve outage requests (with their simulated latencies) fit inside one 30 s open
        // period, so the half-open probe comes in step 3 as announced.
        let (outage, recovery) = (12, total / 10);
        let normal = total / 2 - outage;
        let budget = total - normal - outage - recovery - 2;

        say!(
            "\n1. normal traffic: users across sectors; the experiment splits, healthcare users hit the rule"
        );
        self.batch(normal, Duration::from_millis(250))?;

        let openai = self
            .engine
            .mock_provider("openai")
            .ok_or_else(|| Failure::usage("no openai provider"))?;
        let open_ms = self
            .engine
            .snapshot()
            .providers()
            .providers
            .get("openai")
            .map_or(30_000, |spec| spec.circuit_breaker.open_ms);
        say!("\n2. openai outage: every call returns HTTP 503; traffic fails over to anthropic");
        openai.start_outage(503);
        self.batch(outage, Duration::from_millis(250))?;

        say!(
            "\n3. {} s later, still down: the half-open probe fails and the breaker reopens for longer",
            open_ms / 1000
        );
        self.clock.advance(Duration::from_millis(open_ms));
        self.batch(1, Duration::from_secs(1))?;

        say!("\n4. openai recovers: the next probe succeeds and the breaker closes");
        openai.end_outage();
        self.clock.advance(Duration::from_millis(open_ms * 2));
        self.batch(recovery + 1, Duration::from_millis(250))?;

        say!(
            "\n5. budget: today's spend is restored to just under the feature's daily limit; crossing 100% \
             makes the downgrade policy move traffic to the cheaper chain"
        );
        if let Some(status) =
            self.engine.budget_status().into_iter().find(|status| {
                status.scope == format!("feature:{FEATURE}") && status.period == "day"
            })
        {
            let seeded = (status.limit_usd - status.settled_usd - 0.004).max(0.0);
            self.engine
                .restore_budget_spend(&status.scope, self.clock.utc_now(), seeded);
            say!(
                "   restored ${seeded:.4} of spend against the ${:.2} daily limit",
                status.limit_usd
            );
        }
        self.batch(budget, Duration::from_millis(250))?;
        say!(
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
            let context = self.context(self.sent);
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
        let width = 30;
        let done = width * self.sent / self.total;
        say!(
            "   [{}{}] {}/{}",
            "#".repeat(done),
            ".".repeat(width - done),
            self.sent,
            self.total
        );
        Ok(())
    }

    fn context(&self, index: usize) -> Context {
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
                .entry((attempt.provider.clone(), version.clone()))
                .or_default();
            row.calls += 1;
            row.latencies_ms.push(attempt.latency_ms);
            if attempt.outcome == AttemptOutcome::Failed {
                row.errors += 1;
            } else if let Some(completion) = completion {
                row.input_tokens += completion.usage.total_input_tokens();
                row.output_tokens += completion.usage.output_tokens;
                row.cost_usd += completion.cost_usd;
            }
        }
    }

    fn print_table(&mut self) {
        say!(
            "\n{:<10} {:<8} {:>6} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>10}",
            "provider",
            "version",
            "calls",
            "errors",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "in tok",
            "out tok",
            "cost $"
        );
        for ((provider, version), row) in &mut self.rows {
            row.latencies_ms.sort_by(f64::total_cmp);
            let percentile = |p: f64| nearest_rank(&row.latencies_ms, p);
            say!(
                "{:<10} {:<8} {:>6} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>9} {:>9} {:>10.6}",
                provider,
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
        let states: Vec<String> = self
            .engine
            .breaker_states()
            .into_iter()
            .map(|(name, state)| format!("{name} {state:?}"))
            .collect();
        say!("\nbreakers now: {}", states.join(", "));
    }
}

/// The nearest-rank percentile of sorted values (0 when empty).
fn nearest_rank(sorted: &[f64], percentile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (percentile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
