//! Running an evaluation: every case against every version, `repeat` times, with at most
//! `concurrency` runs in flight (scoped threads pulling from one queue, so the order of the
//! report never depends on which thread finished first). Each run is an ordinary
//! [`Engine::complete`] with the version pinned, so the normal budgets, deadline, failover and
//! telemetry apply; its answer is graded, judge assertions through the judge model.

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::Engine;
use crate::error::EvalError;
use crate::telemetry::stats::significance;

use super::assertion::{GradeOutcome, Observation};
use super::report::{
    AssertionResult, CaseReport, EvalReport, LatencyPercentiles, RunError, RunResult, VersionReport,
};
use super::{Case, DEFAULT_CASE_PASS_RATE, DEFAULT_JUDGED_CASE_PASS_RATE, Dataset};

/// How an evaluation runs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EvalOptions {
    /// The versions to run, each pinned (drafts included); empty runs the active version.
    pub versions: Vec<String>,
    /// Runs per case and version (at least 1).
    pub repeat: u32,
    /// Runs in flight at once (at least 1).
    pub concurrency: usize,
    /// A model of `providers.json` (`provider/name`) replacing every version's chain.
    pub model: Option<String>,
    /// The share of repeats a case needs when it sets none (0..=1); `None` keeps the defaults
    /// (1.0, or 0.8 for a case with a judge assertion).
    pub case_pass_rate: Option<f64>,
    /// The share of cases a version must pass (0..=1, default 1).
    pub min_pass_rate: f64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            versions: Vec::new(),
            repeat: 1,
            concurrency: 4,
            model: None,
            case_pass_rate: None,
            min_pass_rate: 1.0,
        }
    }
}

impl EvalOptions {
    /// Runs these versions.
    pub fn versions<I, S>(mut self, versions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.versions = versions.into_iter().map(Into::into).collect();
        self
    }

    /// Runs each case `repeat` times.
    pub fn repeat(mut self, repeat: u32) -> Self {
        self.repeat = repeat;
        self
    }

    /// Keeps at most `concurrency` runs in flight.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// Replaces every version's chain with one model (`provider/name`).
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// The pass rate for cases that set none.
    pub fn case_pass_rate(mut self, rate: f64) -> Self {
        self.case_pass_rate = Some(rate);
        self
    }

    /// The share of cases each version must pass.
    pub fn min_pass_rate(mut self, rate: f64) -> Self {
        self.min_pass_rate = rate;
        self
    }

    fn check(&self) -> Result<(), EvalError> {
        let invalid = |argument: &str, reason: String| EvalError::InvalidOption {
            argument: argument.to_string(),
            reason,
        };
        if self.repeat == 0 {
            return Err(invalid("repeat", "must be at least 1".into()));
        }
        if self.concurrency == 0 {
            return Err(invalid("concurrency", "must be at least 1".into()));
        }
        for (argument, rate) in [
            ("min_pass_rate", Some(self.min_pass_rate)),
            ("case_pass_rate", self.case_pass_rate),
        ] {
            if let Some(rate) = rate
                && !(0.0..=1.0).contains(&rate)
            {
                return Err(invalid(argument, format!("{rate} is not between 0 and 1")));
            }
        }
        if let Some(model) = &self.model {
            split_model(model)?;
        }
        Ok(())
    }
}

/// `provider/name` split, or why not.
pub(crate) fn split_model(model: &str) -> Result<(&str, &str), EvalError> {
    match model.split_once('/') {
        Some((provider, name)) if !provider.is_empty() && !name.is_empty() => Ok((provider, name)),
        _ => Err(EvalError::InvalidOption {
            argument: "model".into(),
            reason: format!("{model:?} is not written provider/name (openai/gpt-4o)"),
        }),
    }
}

/// How far a run has got, given to the progress callback after every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Runs finished.
    pub completed: usize,
    /// Runs in all (versions x cases x repeats).
    pub total: usize,
    /// Finished runs that failed (an assertion, or the call).
    pub failed: usize,
}

/// One unit of work: a version, a case, a repeat.
struct Job<'d> {
    version: &'d str,
    case: &'d Case,
    repeat: u32,
}

impl Engine {
    /// Runs every case of `dataset` against each version of `options` (pinned; the active
    /// version when none is named), `repeat` times, at most `concurrency` at once, and grades
    /// the answers. A failing case is a result, not an error: the report says whether every
    /// version met its thresholds ([`EvalReport::passed`]).
    ///
    /// Errors: an unknown feature or version, a model override `providers.json` does not list
    /// (`unknown_model`), options out of range (`invalid_argument`), an empty dataset
    /// (`invalid_dataset`). A call that fails inside a run (a budget, an outage) fails that run.
    pub fn evaluate(
        &self,
        feature: &str,
        dataset: &Dataset,
        options: &EvalOptions,
    ) -> crate::Result<EvalReport> {
        self.evaluate_with_progress(feature, dataset, options, &|_| {})
    }

    /// [`Engine::evaluate`], calling `progress` after every run (from the runs' threads).
    pub fn evaluate_with_progress(
        &self,
        feature: &str,
        dataset: &Dataset,
        options: &EvalOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> crate::Result<EvalReport> {
        options.check()?;
        if dataset.cases.is_empty() {
            return Err(EvalError::InvalidDataset {
                problems: vec![crate::error::DatasetProblem {
                    file: dataset.name.clone(),
                    line: 0,
                    pointer: String::new(),
                    message: "the dataset has no cases".into(),
                }],
            }
            .into());
        }
        let versions = self.versions_to_run(feature, dataset, options)?;
        super::judge::check(self, dataset, &versions)?;
        let started_at = self.options().clock.utc_now();
        let started = self.options().clock.now();
        // Known before the first call, so every request of the run is marked with it.
        let run_id: std::sync::Arc<str> = new_run_id(&*self.options().random).into();
        let jobs: Vec<Job<'_>> = versions
            .iter()
            .flat_map(|version| {
                dataset.cases.iter().flat_map(move |case| {
                    (1..=options.repeat).map(move |repeat| Job {
                        version,
                        case,
                        repeat,
                    })
                })
            })
            .collect();
        let results: Mutex<Vec<Option<RunResult>>> = Mutex::new(vec![None; jobs.len()]);
        let next = AtomicUsize::new(0);
        let completed = AtomicUsize::new(0);
        let failed = AtomicUsize::new(0);
        let workers = options.concurrency.min(jobs.len()).max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(index) else { break };
                        let result = self.run_one(feature, job, options, &run_id);
                        if !result.passed {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        results.lock()[index] = Some(result);
                        progress(Progress {
                            completed: completed.fetch_add(1, Ordering::Relaxed) + 1,
                            total: jobs.len(),
                            failed: failed.load(Ordering::Relaxed),
                        });
                    }
                });
            }
        });
        let mut results = results.into_inner().into_iter();
        let mut reports = Vec::with_capacity(versions.len());
        for version in &versions {
            let cases = dataset
                .cases
                .iter()
                .map(|case| {
                    let runs: Vec<RunResult> = (0..options.repeat)
                        .filter_map(|_| results.next().flatten())
                        .collect();
                    case_report(case, version, runs, options)
                })
                .collect();
            reports.push(version_report(version, cases, options.min_pass_rate));
        }
        let comparisons = reports
            .iter()
            .skip(1)
            .map(|candidate| super::compare::compare(&reports[0], candidate))
            .collect();
        let elapsed = self
            .options()
            .clock
            .now()
            .saturating_duration_since(started);
        let report = EvalReport {
            run_id: run_id.to_string(),
            feature: feature.to_string(),
            dataset: dataset.name.clone(),
            started_at,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            repeat: options.repeat,
            concurrency: options.concurrency,
            model: options.model.clone(),
            mock: self.options().mock,
            min_pass_rate: options.min_pass_rate,
            passed: reports.iter().all(|version| version.passed),
            versions: reports,
            comparisons,
        };
        super::events::record(self, &report);
        Ok(report)
    }

    /// The versions asked for, each known to the feature, or the active one.
    fn versions_to_run(
        &self,
        feature: &str,
        dataset: &Dataset,
        options: &EvalOptions,
    ) -> crate::Result<Vec<String>> {
        let snapshot = self.snapshot();
        let compiled = snapshot.feature(feature)?;
        if let Some(model) = &options.model {
            let (provider, name) = split_model(model)?;
            snapshot.check_model(provider, name)?;
        }
        // An assertion limited to a version the feature lacks would silently never apply.
        let known: Vec<&str> = compiled.pinnable.keys().map(String::as_str).collect();
        let problems = super::dataset::check_versions(dataset, feature, &known);
        if !problems.is_empty() {
            return Err(EvalError::InvalidDataset { problems }.into());
        }
        if options.versions.is_empty() {
            return Ok(vec![compiled.active.version.clone()]);
        }
        for version in &options.versions {
            if !compiled.pinnable.contains_key(version) {
                let mut known: Vec<String> = compiled.pinnable.keys().cloned().collect();
                known.sort();
                return Err(crate::resolve::ResolveError::UnknownVersion {
                    feature: feature.to_string(),
                    version: version.clone(),
                    known,
                }
                .into());
            }
        }
        let mut versions = options.versions.clone();
        // Naming a version twice would run and compare it with itself.
        let mut seen = std::collections::HashSet::new();
        versions.retain(|version| seen.insert(version.clone()));
        Ok(versions)
    }

    /// One run: the call, then every assertion that applies to the version.
    fn run_one(
        &self,
        feature: &str,
        job: &Job<'_>,
        options: &EvalOptions,
        run_id: &std::sync::Arc<str>,
    ) -> RunResult {
        let mut context = job
            .case
            .context
            .clone()
            .pin_version(job.version)
            .with_evaluation_run(run_id.clone());
        if let Some((provider, name)) = options.model.as_deref().and_then(|m| split_model(m).ok()) {
            context = context.with_model(provider, name);
        }
        let answer = self.complete(feature, &context);
        let completion = match answer {
            Ok(completion) => completion,
            Err(error) => {
                let kind = error.kind();
                return RunResult {
                    repeat: job.repeat,
                    request_id: None,
                    passed: false,
                    score: Some(0.0),
                    latency_ms: 0.0,
                    cost_usd: 0.0,
                    judge_cost_usd: 0.0,
                    output_tokens: 0,
                    finish_reason: None,
                    repairs: 0,
                    invalid_output: kind == crate::ErrorKind::InvalidOutput,
                    error: Some(RunError {
                        kind,
                        message: error.to_string(),
                    }),
                    output: None,
                    assertions: Vec::new(),
                };
            }
        };
        let observation = Observation::of(&completion);
        let mut judge_cost_usd = 0.0;
        let assertions: Vec<AssertionResult> = job
            .case
            .assertions
            .iter()
            .enumerate()
            .filter(|(_, assertion)| assertion.applies_to(job.version))
            .map(|(index, assertion)| {
                let grade = if assertion.is_judge() {
                    let (grade, cost) = super::judge::grade(self, assertion, &completion, run_id);
                    judge_cost_usd += cost;
                    grade
                } else {
                    assertion.grade(&observation)
                };
                let grade = assertion.with_threshold(grade);
                AssertionResult {
                    index,
                    kind: assertion.type_name(),
                    outcome: grade.outcome,
                    score: grade.score,
                    weight: assertion.weight,
                    reason: grade.reason,
                }
            })
            .collect();
        let score = weighted_score(&assertions);
        let passed = match job.case.threshold {
            Some(threshold) => score.unwrap_or(1.0) >= threshold,
            None => assertions
                .iter()
                .all(|result| result.weight == 0.0 || result.outcome != GradeOutcome::Fail),
        };
        RunResult {
            repeat: job.repeat,
            request_id: Some(completion.request_id.clone()),
            passed,
            score,
            latency_ms: completion.latency_ms,
            cost_usd: completion.cost_usd,
            judge_cost_usd,
            output_tokens: completion.usage.output_tokens,
            finish_reason: completion
                .finish_reason
                .as_ref()
                .map(|reason| reason.as_str().to_string()),
            repairs: completion.repairs,
            invalid_output: completion.repairs > 0,
            error: None,
            output: Some(completion.text),
            assertions,
        }
    }
}

/// The weighted mean score of the graded (not skipped) assertions of non-zero weight.
fn weighted_score(assertions: &[AssertionResult]) -> Option<f64> {
    let graded = assertions
        .iter()
        .filter(|result| result.outcome != GradeOutcome::Skipped && result.weight > 0.0);
    let (sum, weights) = graded.fold((0.0, 0.0), |(sum, weights), result| {
        (sum + result.weight * result.score, weights + result.weight)
    });
    (weights > 0.0).then(|| sum / weights)
}

fn case_report(
    case: &Case,
    version: &str,
    runs: Vec<RunResult>,
    options: &EvalOptions,
) -> CaseReport {
    let judged = case.is_judged(version);
    let required_pass_rate = case
        .pass_rate
        .or(options.case_pass_rate)
        .unwrap_or(if judged {
            DEFAULT_JUDGED_CASE_PASS_RATE
        } else {
            DEFAULT_CASE_PASS_RATE
        });
    let passes = runs.iter().filter(|run| run.passed).count() as u32;
    let pass_rate = ratio(passes as usize, runs.len());
    let scores: Vec<f64> = runs.iter().filter_map(|run| run.score).collect();
    CaseReport {
        id: case.id.clone(),
        description: case.description.clone(),
        tags: case.tags.clone(),
        location: if case.file.is_empty() {
            String::new()
        } else {
            format!("{}:{}", case.file, case.line)
        },
        judged,
        passes,
        pass_rate,
        required_pass_rate,
        threshold: case.threshold,
        mean_score: mean(&scores),
        // A tolerance, so 4 of 5 (0.8 in floating point) meets a rate of 0.8.
        passed: pass_rate + 1e-9 >= required_pass_rate,
        runs,
    }
}

fn version_report(version: &str, cases: Vec<CaseReport>, min_pass_rate: f64) -> VersionReport {
    let runs: Vec<&RunResult> = cases.iter().flat_map(|case| &case.runs).collect();
    let mut latencies: Vec<f64> = runs.iter().map(|run| run.latency_ms).collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |percent| significance::nearest_rank(&latencies, percent).unwrap_or(0.0);
    let scores: Vec<f64> = runs.iter().filter_map(|run| run.score).collect();
    let cases_passed = cases.iter().filter(|case| case.passed).count();
    let pass_rate = ratio(cases_passed, cases.len());
    VersionReport {
        version: version.to_string(),
        cases_total: cases.len(),
        cases_passed,
        pass_rate,
        mean_score: mean(&scores),
        cost_usd: runs.iter().map(|run| run.cost_usd).sum(),
        judge_cost_usd: runs.iter().map(|run| run.judge_cost_usd).sum(),
        latency_ms: LatencyPercentiles {
            p50: percentile(50),
            p95: percentile(95),
            p99: percentile(99),
        },
        invalid_output_rate: ratio(
            runs.iter().filter(|run| run.invalid_output).count(),
            runs.len(),
        ),
        errors: runs.iter().filter(|run| run.error.is_some()).count(),
        skipped_assertions: runs
            .iter()
            .flat_map(|run| &run.assertions)
            .filter(|result| result.outcome == GradeOutcome::Skipped)
            .count(),
        passed: pass_rate + 1e-9 >= min_pass_rate,
        cases,
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// `eval-` and 16 hex digits from the engine's randomness.
fn new_run_id(random: &dyn crate::client::Random) -> String {
    let bits = (random.next_f64() * (1u64 << 52) as f64) as u64;
    let more = (random.next_f64() * (1u64 << 12) as f64) as u64;
    format!("eval-{:013x}{:03x}", bits, more)
}
