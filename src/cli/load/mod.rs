//! `prompt-config load`: drives `Engine::complete` at a fixed arrival rate and reports what the
//! process sustained (issue 11).
//!
//! Open loop, as wrk2 and k6's arrival-rate executors do: arrival `i` is scheduled at
//! `t0 + i / rps` whatever the answers do, and its latency is measured from that scheduled
//! time, so time spent waiting for a worker shows instead of hiding (a closed loop would send
//! less when answers slow down, and report the slowdown as fine). A pool of `--concurrency`
//! worker threads takes arrivals from a queue that holds as many arrivals as there are
//! workers; an arrival that finds the queue full is counted as a request and as an error of
//! kind `dropped`, with no latency (it never ran).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, TrySendError, sync_channel};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::args::{Dirs, Request, SecretText, Text};
use super::cache::inputs::read_inputs;
use super::cache::known_feature;
use super::demo::{demo_context, nearest_rank};
use super::resolve::request_options;
use super::{Failure, output};
use prompt_config::state::StateBackend;
use prompt_config::{Context, Engine};

/// The highest arrival rate accepted: beyond it the scheduler thread itself is the bottleneck.
const MAX_RPS: f64 = 100_000.0;
/// The longest run accepted.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The most arrivals in one run (each keeps its latency in memory: 8 bytes).
const MAX_REQUESTS: f64 = 10_000_000.0;
/// The most worker threads.
const MAX_CONCURRENCY: usize = 4096;
/// The error kind of an arrival that found every worker busy and the queue full.
const DROPPED: &str = "dropped";

/// The arguments of `prompt-config load`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The feature to call.
    #[arg(value_parser = Text)]
    pub feature: String,
    /// Arrivals per second (fractions allowed, e.g. 0.5), more than 0 and at most 100000;
    /// --rps × --duration at most 10,000,000 requests per run.
    #[arg(long, value_name = "R", value_parser = parse_rps, allow_hyphen_values = true)]
    pub rps: f64,
    /// How long to send: 500ms, 60s, 2m, 1h (a bare number is seconds), at most 24h;
    /// --rps × --duration at most 10,000,000 requests per run.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub duration: Duration,
    /// Worker threads [default: the rate rounded up, between 4 and 256: enough for answers
    /// taking up to a second].
    #[arg(long, value_name = "C", value_parser = parse_concurrency, allow_hyphen_values = true)]
    pub concurrency: Option<usize>,
    /// Contexts to send, one JSON object per line ({"user_id" or "user", "attributes",
    /// "variables", "version"}; a leading BOM is ignored; as `cache warm --inputs`), used in
    /// turn [default: the demo's profiles].
    #[arg(long, value_name = "FILE.jsonl")]
    pub inputs: Option<PathBuf>,
    /// Route every provider to the mock provider (no key, no network).
    #[arg(long)]
    pub mock: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Append telemetry to this file.
    #[arg(long, value_name = "FILE")]
    pub telemetry: Option<PathBuf>,
    /// Keep fleet state in this Redis (redis://host:6379/, or comma-separated cluster seeds)
    /// [default: $PROMPT_CONFIG_REDIS_URL, else in memory].
    #[arg(long, value_name = "URL", value_parser = SecretText)]
    pub redis: Option<String>,
    #[command(flatten)]
    pub dirs: Dirs,
}

// The numeric arguments take values starting with a hyphen (`allow_hyphen_values`), so that
// `--duration -5s` or `--rps -inf` reach these parsers and get their message instead of
// clap's `unexpected argument '-5'`. The price: `--rps --mock` reads `--mock` as the rate, so
// a value that is an option says that the value is missing.

/// The message for a value that is another option: the user left the value out.
fn missing_value(text: &str) -> Option<String> {
    text.starts_with("--")
        .then(|| format!("a value is required, not the option {text}"))
}

fn parse_rps(text: &str) -> Result<f64, String> {
    if let Some(message) = missing_value(text) {
        return Err(message);
    }
    match text.trim().parse::<f64>() {
        Ok(rps) if rps.is_finite() && rps > 0.0 && rps <= MAX_RPS => Ok(rps),
        Ok(rps) if rps > MAX_RPS => Err(format!(
            "must be at most {MAX_RPS}: one process cannot schedule more (run several)"
        )),
        _ => Err("must be a number of requests per second above 0 (e.g. 50 or 0.5)".into()),
    }
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    if let Some(message) = missing_value(text) {
        return Err(message);
    }
    match text.trim().parse::<usize>() {
        Ok(workers) if (1..=MAX_CONCURRENCY).contains(&workers) => Ok(workers),
        _ => Err(format!(
            "must be a whole number of worker threads from 1 to {MAX_CONCURRENCY}"
        )),
    }
}

/// `500ms`, `60s`, `2m`, `1h`, or a bare number of seconds; above zero, at most a day.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str = "must be a duration above 0 such as 500ms, 60s, 2m or 1h";
    if let Some(message) = missing_value(text) {
        return Err(message);
    }
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(HINT.into()),
    };
    let seconds = match number.parse::<f64>() {
        Ok(value) if value.is_finite() => value * seconds_per_unit,
        _ => return Err(HINT.into()),
    };
    if seconds <= 0.0 || seconds > MAX_DURATION.as_secs_f64() {
        return Err(format!("{HINT}, at most 24h"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// One scheduled arrival: which context to send and when it was due.
struct Arrival {
    index: usize,
    due: Instant,
}

/// What the workers found, gathered under one lock (a few hundred updates a second at most
/// per worker: the lock is never the bottleneck next to a completion).
#[derive(Default)]
struct Tally {
    /// Latencies of answered calls, in milliseconds from the scheduled arrival.
    latencies_ms: Vec<f64>,
    errors_by_kind: BTreeMap<String, u64>,
    cache_hits: u64,
    cost_usd: f64,
    /// When the first and the last answer came.
    first_answer: Option<Instant>,
    last_answer: Option<Instant>,
}

/// Counters the progress line reads while the run goes on.
#[derive(Default)]
struct Progress {
    /// Arrivals scheduled so far, dropped ones included.
    sent: AtomicU64,
    /// Calls that came back (answered or failed); a dropped arrival never ran, so it is not
    /// done: counting it would show answers that never came.
    done: AtomicU64,
    /// Failed calls and dropped arrivals.
    errors: AtomicU64,
    /// Calls answered: the per-second rate is read from this ("answers in that second").
    answered: AtomicU64,
}

/// Runs `prompt-config load`.
pub fn run(args: &LoadArgs) -> Result<(), Failure> {
    let requests = args.rps * args.duration.as_secs_f64();
    if requests > MAX_REQUESTS {
        return Err(Failure::invalid_argument(format!(
            "--rps × --duration is {requests:.0} requests; at most {MAX_REQUESTS:.0} per run \
             (each keeps its latency in memory): lower --rps or --duration, or run several"
        ))
        .with_details(json!({"argument": "--rps", "requests": requests, "max": MAX_REQUESTS})));
    }
    let total = requests.round() as usize;
    if total == 0 {
        return Err(Failure::invalid_argument(
            "--rps × --duration sends no request: raise --rps or --duration",
        ));
    }
    let concurrency = args
        .concurrency
        .unwrap_or_else(|| (args.rps.ceil() as usize).clamp(4, 256));
    let options = request_options(&as_request(args))?.with_mock(args.mock);
    let state = match &options.state {
        StateBackend::Memory => "memory",
        _ => "redis",
    };
    let engine = Arc::new(Engine::open(options)?);
    // The feature first, as `cache warm` does: an unknown one is `unknown_feature` naming the
    // known ones, whatever the inputs (no hint about profiles that would not help).
    known_feature(&engine.snapshot().feature_names(), &args.feature)?;
    // The same file format and messages as `cache warm --inputs` (one parser).
    let (first_line, contexts): (usize, Vec<Context>) = match &args.inputs {
        Some(path) => {
            let numbered = read_inputs(path)?;
            let first_line = numbered.first().map_or(1, |(line, _)| *line);
            (
                first_line,
                numbered.into_iter().map(|(_, context)| context).collect(),
            )
        }
        None => (1, (0..300).map(demo_context).collect()),
    };
    // A feature whose variables the demo profiles do not fill would fail every call the same
    // way: say so once, before sending anything.
    if let Err(error) = engine.resolve(&args.feature, &contexts[0]) {
        let mut failure = Failure::from(error);
        failure.message = match &args.inputs {
            Some(path) => format!(
                "{} (the first context of --inputs {}:{first_line})",
                failure.message,
                path.display()
            ),
            None => format!(
                "{} (the built-in load profiles fit the shipped career_path_navigator feature; \
                 give --inputs FILE.jsonl)",
                failure.message
            ),
        };
        return Err(failure);
    }

    let run = Run {
        engine: Arc::clone(&engine),
        feature: args.feature.clone(),
        contexts: Arc::new(contexts),
        tally: Arc::new(Mutex::new(Tally::default())),
        progress: Arc::new(Progress::default()),
    };
    let (elapsed, dropped) = run.drive(args.rps, total, concurrency);
    // Read before close: a run on Redis that lost it served from per-process state, which the
    // report must say (the figures then do not hold for a fleet).
    let degradations = engine.metrics().state_degradations;
    engine.close();

    let mut tally = std::mem::take(&mut *run.tally.lock());
    if dropped > 0 {
        tally.errors_by_kind.insert(DROPPED.into(), dropped);
    }
    let shape = RunShape {
        state,
        degradations,
        concurrency,
        total,
        elapsed,
    };
    let report = report(args, &shape, tally);
    if args.json {
        output::print_json(&report);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// `resolve`'s options builder takes a `Request`: the load command shares its directories,
/// telemetry and Redis arguments (and their checks), and has no user or variables of its own.
fn as_request(args: &LoadArgs) -> Request {
    Request {
        feature: args.feature.clone(),
        user: String::new(),
        attr: Vec::new(),
        attrs: None,
        var: Vec::new(),
        vars: None,
        version: None,
        traceparent: None,
        json: args.json,
        telemetry: args.telemetry.clone(),
        redis: args.redis.clone(),
        dirs: args.dirs.clone(),
    }
}

/// One run's shared pieces, cloned into every worker.
#[derive(Clone)]
struct Run {
    engine: Arc<Engine>,
    feature: String,
    contexts: Arc<Vec<Context>>,
    tally: Arc<Mutex<Tally>>,
    progress: Arc<Progress>,
}

impl Run {
    /// Schedules `total` arrivals `1/rps` apart on `concurrency` workers, waits for the last
    /// answer, and returns the time from the first arrival to the last answer and how many
    /// arrivals were dropped.
    fn drive(&self, rps: f64, total: usize, concurrency: usize) -> (Duration, u64) {
        let (sender, receiver) = sync_channel::<Arrival>(concurrency);
        let receiver = Arc::new(Mutex::new(receiver));
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                let (run, receiver) = (self.clone(), Arc::clone(&receiver));
                std::thread::spawn(move || run.work(&receiver))
            })
            .collect();
        let finished = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let reporter = {
            let (progress, finished) = (Arc::clone(&self.progress), Arc::clone(&finished));
            std::thread::spawn(move || report_progress(&progress, &finished, start))
        };

        let mut dropped = 0;
        for index in 0..total {
            let due = start + Duration::from_secs_f64(index as f64 / rps);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            self.progress.sent.fetch_add(1, Ordering::Relaxed);
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                sender.try_send(Arrival { index, due })
            {
                dropped += 1;
                self.progress.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(sender);
        for worker in workers {
            // A worker that panicked lost only its own arrival's record; the others count.
            let _ = worker.join();
        }
        let elapsed = start.elapsed();
        finished.store(true, Ordering::Relaxed);
        let _ = reporter.join();
        (elapsed, dropped)
    }

    /// Takes arrivals until the scheduler hangs up, calling `complete` for each.
    fn work(&self, receiver: &Mutex<Receiver<Arrival>>) {
        loop {
            // Only one idle worker waits inside `recv`; the others wait for the lock.
            let Ok(arrival) = receiver.lock().recv() else {
                return;
            };
            let context = &self.contexts[arrival.index % self.contexts.len()];
            let result = self.engine.complete(&self.feature, context);
            let now = Instant::now();
            let latency_ms = now.duration_since(arrival.due).as_secs_f64() * 1000.0;
            let mut tally = self.tally.lock();
            match result {
                Ok(completion) => {
                    tally.latencies_ms.push(latency_ms);
                    tally.first_answer.get_or_insert(now);
                    tally.last_answer = Some(now);
                    tally.cost_usd += completion.cost_usd;
                    tally.cache_hits += u64::from(completion.cache.is_some());
                    self.progress.answered.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    *tally
                        .errors_by_kind
                        .entry(error.kind().as_str().to_string())
                        .or_default() += 1;
                    self.progress.errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(tally);
            self.progress.done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Once a second until the run ends: sent, done, errors and the answers of the last second.
/// A terminal gets one line rewritten in place; a log or pipe gets a plain line each second.
fn report_progress(progress: &Progress, finished: &AtomicBool, start: Instant) {
    let terminal = std::io::stderr().is_terminal();
    let mut last_answered = 0;
    let mut tick = 1;
    let mut printed = false;
    while !finished.load(Ordering::Relaxed) {
        let next = start + Duration::from_secs(tick);
        // Short naps so the thread notices the end of the run promptly.
        while Instant::now() < next && !finished.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20).min(next - Instant::now()));
        }
        if finished.load(Ordering::Relaxed) {
            break;
        }
        let answered = progress.answered.load(Ordering::Relaxed);
        let line = format!(
            "{tick:>4} s: sent {}, done {}, errors {}, {} rps",
            progress.sent.load(Ordering::Relaxed),
            progress.done.load(Ordering::Relaxed),
            progress.errors.load(Ordering::Relaxed),
            answered.saturating_sub(last_answered)
        );
        if terminal {
            write_stderr(&format!("\r{line}\x1b[K"));
            printed = true;
        } else {
            output::write_error(&line);
        }
        last_answered = answered;
        tick += 1;
    }
    if printed {
        write_stderr("\n");
    }
}

/// Writes to stderr without a newline, ignoring failure (nobody is left to tell).
fn write_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}

/// Answers per second between the first and the last answer: in a steady state this is the
/// arrival rate whatever the latency (answers lag arrivals by it at both ends), and when the
/// process cannot keep up it is the rate it managed. With fewer than two answers there is no
/// span: answers over the whole run.
fn throughput(
    answered: u64,
    first: Option<Instant>,
    last: Option<Instant>,
    elapsed: Duration,
) -> f64 {
    match (first, last) {
        (Some(first), Some(last)) if answered >= 2 && last > first => {
            (answered - 1) as f64 / last.duration_since(first).as_secs_f64()
        }
        _ => answered as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
    }
}

/// How a run went, besides the tally of its calls.
struct RunShape {
    /// `memory` or `redis`.
    state: &'static str,
    /// How often the shared state became degraded during the run (the engine's
    /// `state_degradations` metric; always 0 with memory state).
    degradations: u64,
    concurrency: usize,
    total: usize,
    elapsed: Duration,
}

/// The report object (`--json` prints it as is; the table reads it).
fn report(args: &LoadArgs, shape: &RunShape, mut tally: Tally) -> Value {
    let RunShape {
        state,
        degradations,
        concurrency,
        total,
        elapsed,
    } = *shape;
    tally.latencies_ms.sort_by(f64::total_cmp);
    let answered = tally.latencies_ms.len() as u64;
    let errors: u64 = tally.errors_by_kind.values().sum();
    let throughput = throughput(answered, tally.first_answer, tally.last_answer, elapsed);
    let percentile = |p: f64| nearest_rank(&tally.latencies_ms, p);
    json!({
        "feature": args.feature,
        "state": state,
        "state_degraded": degradations > 0,
        "state_degradations": degradations,
        "offered_rps": args.rps,
        "duration_s": args.duration.as_secs_f64(),
        "elapsed_s": elapsed.as_secs_f64(),
        "concurrency": concurrency,
        "requests": total,
        "answered": answered,
        "errors": errors,
        "errors_by_kind": tally.errors_by_kind,
        "throughput_rps": throughput,
        "latency_ms": {
            "p50": percentile(0.50),
            "p95": percentile(0.95),
            "p99": percentile(0.99),
            "max": tally.latencies_ms.last().copied().unwrap_or(0.0),
        },
        "cache_hit_rate": if answered == 0 { 0.0 } else { tally.cache_hits as f64 / answered as f64 },
        "cost_usd": tally.cost_usd,
    })
}

fn print_table(report: &Value) {
    let number = |pointer: &str| {
        report
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
    };
    let text = |pointer: &str| {
        report
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let workers = number("/concurrency");
    say!(
        "load {}: {} rps offered for {} s on {} worker{}, {} state",
        text("/feature"),
        number("/offered_rps"),
        number("/duration_s"),
        workers,
        if workers == 1.0 { "" } else { "s" },
        text("/state")
    );
    let degradations = number("/state_degradations");
    if degradations > 0.0 {
        say!(
            "state         degraded   {degradations:.0} time{}: Redis was unreachable, calls used \
             this process's own state (rate limits, budgets and cache not shared)",
            if degradations == 1.0 { "" } else { "s" }
        );
    }
    say!(
        "requests      {:>10.0}   answered {:.0}, errors {:.0}",
        number("/requests"),
        number("/answered"),
        number("/errors")
    );
    say!(
        "throughput    {:>10.1}   answers/s (first to last answer; run took {:.1} s)",
        number("/throughput_rps"),
        number("/elapsed_s")
    );
    say!(
        "latency p50   {:>10.1}   ms from the scheduled arrival",
        number("/latency_ms/p50")
    );
    say!("latency p95   {:>10.1}   ms", number("/latency_ms/p95"));
    say!("latency p99   {:>10.1}   ms", number("/latency_ms/p99"));
    let by_kind: Vec<String> = report["errors_by_kind"]
        .as_object()
        .map(|kinds| {
            kinds
                .iter()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect()
        })
        .unwrap_or_default();
    say!(
        "errors        {:>10.0}   {}",
        number("/errors"),
        if by_kind.is_empty() {
            "-".to_string()
        } else {
            by_kind.join(", ")
        }
    );
    say!(
        "cache hits    {:>9.1}%   of answers",
        number("/cache_hit_rate") * 100.0
    );
    say!("cost          {:>10.6}   USD", number("/cost_usd"));
}

#[cfg(test)]
mod tests;
