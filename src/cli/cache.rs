//! `prompt-config cache warm | stats | clear`: the response cache from the command line.
//! `warm` completes every context of a JSONL file with bounded concurrency (progress on
//! stderr); `stats` reads hit rate and savings from telemetry logs and counts live entries in
//! Redis; `clear` deletes a feature's (or one version's) entries in Redis for the whole fleet.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde_json::{Value, json};

/// Shared with `load --inputs`.
pub(super) mod inputs;

use self::inputs::read_inputs;
use super::args::{CacheCommand, Dirs};
use super::resolve::with_redis;
use super::{Failure, engine_options, output};
use prompt_config::telemetry::stats::{StatsOptions, analyze};
use prompt_config::{CacheStoreCounts, Context, Engine, ErrorKind, ResolveError};

pub fn run(command: CacheCommand) -> Result<(), Failure> {
    match command {
        CacheCommand::Warm {
            feature,
            inputs,
            concurrency,
            mock,
            redis,
            telemetry,
            dirs,
            json,
        } => {
            let mut options = with_redis(engine_options(&dirs), redis.as_deref())?.with_mock(mock);
            if let Some(path) = telemetry {
                options = options.with_telemetry(path);
            }
            let engine = Engine::open(options)?;
            // Once, before the file: not one `unknown_feature` per line.
            known_feature(&engine.snapshot().feature_names(), &feature)?;
            let contexts = read_inputs(&inputs)?;
            let report = warm(
                &engine,
                &feature,
                &inputs,
                contexts,
                usize::from(concurrency),
            );
            let backend = engine.cache_backend();
            let counts = engine.cache_store_counts();
            let summary = warm_json(&report, &counts, backend);
            let failure = match (report.failures.first(), report.first_failure_kind) {
                (Some(first), Some(kind)) => Some(Failure::failed(
                    kind,
                    format!(
                        "{} of {} contexts failed; first: {first}",
                        report.failures.len(),
                        report.total
                    ),
                    json!({"failures": report.failures}),
                )),
                _ => nothing_stored(&feature, &report, &counts, backend),
            };
            if failure.is_none() && counts.stored < report.completed {
                output::write_error(&format!(
                    "warning: {} of {} answers were not stored: {}",
                    report.completed - counts.stored,
                    report.completed,
                    why_not_stored(report.completed, &counts, backend)
                ));
            }
            match failure {
                // With --json stdout holds exactly one object: the error, whose details are
                // the whole report.
                Some(failure) if json => Err(failure.with_details(summary)),
                Some(failure) => {
                    print_warm_text(&report, &counts, backend);
                    Err(failure)
                }
                None if json => {
                    output::print_json(&summary);
                    Ok(())
                }
                None => {
                    print_warm_text(&report, &counts, backend);
                    Ok(())
                }
            }
        }
        CacheCommand::Stats {
            feature,
            telemetry,
            redis,
            mock,
            dirs,
            json,
        } => stats(
            feature.as_deref(),
            &telemetry,
            redis.as_deref(),
            mock,
            &dirs,
            json,
        ),
        CacheCommand::Clear {
            feature,
            version,
            redis,
            mock,
            dirs,
            json,
        } => {
            let options = with_redis(engine_options(&dirs), redis.as_deref())?.with_mock(mock);
            let engine = Engine::open(options)?;
            match engine.cache_clear(&feature, version.as_deref())? {
                Some(deleted) if json => output::print_json(&json!({
                    "backend": "redis", "feature": feature, "version": version, "deleted": deleted
                })),
                Some(deleted) => say!(
                    "deleted {deleted} cached answer{} of {feature}{} in Redis",
                    if deleted == 1 { "" } else { "s" },
                    version.map(|v| format!(" {v}")).unwrap_or_default()
                ),
                None => {
                    return Err(Failure::invalid_argument(
                        "no Redis given (--redis or PROMPT_CONFIG_REDIS_URL): a memory cache lives \
                         inside each application process and is cleared there \
                         (Engine::cache_clear); this command cannot reach it",
                    ));
                }
            }
            Ok(())
        }
    }
}

/// `unknown_feature` (exit 1, the known ones in its details) unless `feature` is one of `known`.
/// `load` checks its feature with it too.
pub(super) fn known_feature(known: &[&str], feature: &str) -> Result<(), Failure> {
    if known.contains(&feature) {
        return Ok(());
    }
    let error = prompt_config::Error::from(ResolveError::UnknownFeature {
        feature: feature.to_string(),
        known: known.iter().map(|name| name.to_string()).collect(),
    });
    Err(error.into())
}

/// What a warm run did.
struct WarmReport {
    total: usize,
    /// Completed by a provider (and stored when cacheable).
    completed: u64,
    /// Already in the cache.
    already_cached: u64,
    cost_usd: f64,
    /// `file:line: [kind] error`, in line order.
    failures: Vec<String>,
    /// The kind of the first failure by line: the run's error kind.
    first_failure_kind: Option<ErrorKind>,
}

/// Completes every context on `concurrency` threads, each taking the next line.
fn warm(
    engine: &Engine,
    feature: &str,
    path: &Path,
    contexts: Vec<(usize, Context)>,
    concurrency: usize,
) -> WarmReport {
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let completed = AtomicU64::new(0);
    let already_cached = AtomicU64::new(0);
    let cost = Mutex::new(0.0f64);
    let failures = Mutex::new(Vec::new());
    let total = contexts.len();
    let progress = Progress::new(total);
    std::thread::scope(|scope| {
        for _ in 0..concurrency.min(total) {
            scope.spawn(|| {
                while let Some((line, context)) = contexts.get(next.fetch_add(1, Ordering::Relaxed))
                {
                    match engine.complete(feature, context) {
                        Ok(completion) if completion.cache.is_some() => {
                            already_cached.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(completion) => {
                            completed.fetch_add(1, Ordering::Relaxed);
                            *cost.lock() += completion.cost_usd;
                        }
                        Err(error) => failures.lock().push((
                            *line,
                            error.kind(),
                            format!("{}:{line}: [{}] {error}", path.display(), error.kind()),
                        )),
                    }
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress.show(finished, failures.lock().len());
                }
            });
        }
    });
    progress.finish();
    let mut failures = failures.into_inner();
    failures.sort_by_key(|(line, _, _)| *line);
    WarmReport {
        total,
        completed: completed.into_inner(),
        already_cached: already_cached.into_inner(),
        cost_usd: cost.into_inner(),
        first_failure_kind: failures.first().map(|(_, kind, _)| *kind),
        failures: failures
            .into_iter()
            .map(|(_, _, message)| message)
            .collect(),
    }
}

/// A progress bar on stderr when it is a terminal; otherwise a line per tenth.
struct Progress {
    total: usize,
    terminal: bool,
    last_tenth: AtomicUsize,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress {
            total,
            terminal: std::io::stderr().is_terminal(),
            last_tenth: AtomicUsize::new(0),
        }
    }

    fn show(&self, done: u64, failed: usize) {
        let done = usize::try_from(done).unwrap_or(usize::MAX);
        let tenth = done * 10 / self.total.max(1);
        if !self.terminal && self.last_tenth.fetch_max(tenth, Ordering::Relaxed) >= tenth {
            return;
        }
        let filled = done * 30 / self.total.max(1);
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(30 - filled.min(30)));
        let text = format!("warming [{bar}] {done}/{} ({failed} failed)", self.total);
        let mut stderr = std::io::stderr().lock();
        // Progress is a courtesy: a closed stderr must not stop the run.
        let _ = if self.terminal {
            write!(stderr, "\r{text}")
        } else {
            writeln!(stderr, "{text}")
        };
        let _ = stderr.flush();
    }

    fn finish(&self) {
        if self.terminal {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The run's failure when providers answered but not one answer was stored: warming then
/// achieved nothing, which must not look like success.
fn nothing_stored(
    feature: &str,
    report: &WarmReport,
    counts: &CacheStoreCounts,
    backend: &str,
) -> Option<Failure> {
    if report.completed == 0 || counts.stored > 0 {
        return None;
    }
    let kind = if counts.store_failed > 0 {
        ErrorKind::StateUnavailable
    } else {
        ErrorKind::InvalidArgument
    };
    Some(Failure::failed(
        kind,
        format!(
            "nothing was stored in the {backend} cache: {} answer{} of {feature} completed, {}",
            report.completed,
            if report.completed == 1 { "" } else { "s" },
            why_not_stored(report.completed, counts, backend)
        ),
        Value::Null,
    ))
}

/// Why answers were not stored, from the engine's counts.
fn why_not_stored(completed: u64, counts: &CacheStoreCounts, backend: &str) -> String {
    let mut reasons = Vec::new();
    if counts.store_failed > 0 {
        reasons.push(format!(
            "{} not taken by the store ({})",
            counts.store_failed,
            if backend == "redis" {
                "Redis unreachable or degraded, or the answer past the entry size cap"
            } else {
                "the answer past the entry size cap"
            }
        ));
    }
    if counts.not_cacheable > 0 {
        reasons.push(format!(
            "{} not cacheable (refusals, truncated answers, estimated costs, or a chain's \
             temperature above 0 without allow_temperature_above_zero)",
            counts.not_cacheable
        ));
    }
    // Neither counter moves for an answer of a version without a cache.
    let uncached =
        completed.saturating_sub(counts.stored + counts.not_cacheable + counts.store_failed);
    if uncached > 0 {
        reasons.push(format!(
            "{uncached} answered by a version without an enabled `cache` in the feature config"
        ));
    }
    reasons.join("; ")
}

/// The warm report as one JSON object.
fn warm_json(report: &WarmReport, counts: &CacheStoreCounts, backend: &str) -> Value {
    json!({
        "backend": backend,
        "contexts": report.total,
        "completed": report.completed,
        "stored": counts.stored,
        "not_stored": report.completed.saturating_sub(counts.stored),
        "not_cacheable": counts.not_cacheable,
        "store_failed": counts.store_failed,
        "already_cached": report.already_cached,
        "failed": report.failures.len(),
        "cost_usd": report.cost_usd,
        "failures": report.failures,
    })
}

fn print_warm_text(report: &WarmReport, counts: &CacheStoreCounts, backend: &str) {
    say!(
        "warmed {} context{} in the {backend} cache: {} completed (${:.6}), {} stored, {} not stored, {} already cached, {} failed",
        report.total,
        if report.total == 1 { "" } else { "s" },
        report.completed,
        report.cost_usd,
        counts.stored,
        report.completed.saturating_sub(counts.stored),
        report.already_cached,
        report.failures.len()
    );
    for failure in &report.failures {
        say!("  {failure}");
    }
}

/// `cache stats`: telemetry figures, and live entries when the cache is in Redis.
fn stats(
    feature: Option<&str>,
    telemetry: &[PathBuf],
    redis: Option<&str>,
    mock: bool,
    dirs: &Dirs,
    json: bool,
) -> Result<(), Failure> {
    let options = with_redis(engine_options(dirs), redis)?.with_mock(mock);
    let uses_redis = !matches!(options.state, prompt_config::state::StateBackend::Memory);
    if !uses_redis && telemetry.is_empty() {
        return Err(Failure::invalid_argument(
            "nothing to report: give --telemetry FILE (hit rate and savings) and/or --redis URL \
             (live entries; a memory cache belongs to its process)",
        ));
    }
    // The config is needed for Redis (the features' versions) and to check a feature asked
    // for; telemetry alone is read without it.
    let engine = if uses_redis || feature.is_some() {
        let engine = Engine::open(options)?;
        if let Some(feature) = feature {
            known_feature(&engine.snapshot().feature_names(), feature)?;
        }
        Some(engine)
    } else {
        None
    };
    let mut figures = Vec::new();
    let mut lines = None;
    if !telemetry.is_empty() {
        let report = analyze(telemetry, &StatsOptions::default())
            .map_err(|error| Failure::failed(ErrorKind::Io, error.to_string(), Value::Null))?;
        lines = Some((report.lines_read, report.lines_skipped, report.files.len()));
        figures = report
            .cache
            .into_iter()
            .filter(|row| feature.is_none_or(|feature| row.feature == feature))
            .collect();
    }
    let mut entries = Vec::new();
    if let Some(engine) = engine.filter(|_| uses_redis) {
        let features: Vec<String> = match feature {
            Some(feature) => vec![feature.to_string()],
            None => engine
                .snapshot()
                .feature_names()
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        for name in features {
            for (version, count) in engine.cache_entries(&name)? {
                entries.push(json!({"feature": name, "version": version, "entries": count}));
            }
        }
    }
    if json {
        let mut object = json!({"lookups": figures, "entries": entries});
        if let Some((read, skipped, _)) = lines {
            object["lines_read"] = read.into();
            object["lines_skipped"] = skipped.into();
        }
        output::print_json(&object);
        return Ok(());
    }
    if let Some((read, skipped, files)) = lines {
        say!(
            "read {read} line{} from {files} file{}, skipped {skipped} unparseable",
            if read == 1 { "" } else { "s" },
            if files == 1 { "" } else { "s" },
        );
        if figures.is_empty() {
            say!("no response cache lookups in the telemetry given");
        } else {
            let mut rows = vec![
                [
                    "feature",
                    "version",
                    "partition",
                    "lookups",
                    "hits",
                    "hit rate",
                    "$ saved",
                ]
                .map(str::to_string),
            ];
            for row in &figures {
                rows.push([
                    row.feature.clone(),
                    row.version.clone(),
                    row.partition.clone(),
                    row.lookups.to_string(),
                    row.hits.to_string(),
                    format!("{:.1}%", row.hit_rate * 100.0),
                    format!("{:.6}", row.saved_usd),
                ]);
            }
            print_aligned(&rows);
        }
    }
    for entry in &entries {
        say!(
            "{} {}: {} live entr{} in Redis",
            entry["feature"].as_str().unwrap_or_default(),
            entry["version"].as_str().unwrap_or_default(),
            entry["entries"],
            if entry["entries"] == 1 { "y" } else { "ies" }
        );
    }
    Ok(())
}

/// Rows as columns padded to their widest cell, text left and numbers right.
fn print_aligned(rows: &[[String; 7]]) {
    let mut widths = [0usize; 7];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                if column < 3 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        say!("{}", cells.join("  ").trim_end());
    }
}
