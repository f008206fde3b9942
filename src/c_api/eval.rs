//! The evaluation export: `pc_evaluate` reads an evaluation request (where the cases
//! come from, and the options of [`EvalOptions`]), loads the dataset through the core's own
//! dataset reader, runs [`Engine::evaluate`](crate::Engine::evaluate) and hands back the
//! report as JSON. Every rule (the dataset's shape, the options' ranges, the versions and models
//! that exist) is the core's; this file only reads the request's JSON shape.

use std::ffi::c_char;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::boundary::{Failure, Out, json_object_text, run, text_arg, wrong_shape};
use super::engine::engine_arg;
use super::pc_engine;
use super::status::pc_status;
use crate::Engine;
use crate::eval::{Dataset, EvalOptions};

/// The request JSON of `pc_evaluate`. Unknown keys are refused, so a misspelt option
/// (`"repeats": 3`) is an error rather than an evaluation run with the default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EvalRequest {
    /// One dataset file (JSONL), relative to the working directory or absolute.
    dataset: Option<String>,
    /// Several dataset files, loaded as one dataset (ids unique across them).
    datasets: Option<Vec<String>>,
    /// Cases written inline, each an object in the dataset line shape.
    cases: Option<Vec<Value>>,
    /// Versions to run (pinned); none or empty: the active version.
    versions: Option<Vec<String>>,
    /// Runs per case and version.
    repeat: Option<u32>,
    /// Runs in flight at once.
    concurrency: Option<usize>,
    /// A model of `providers.json` (`provider/name`) replacing every version's chain.
    model: Option<String>,
    /// The pass rate of cases that set none.
    case_pass_rate: Option<f64>,
    /// The share of cases each version must pass.
    min_pass_rate: Option<f64>,
}

/// Where the cases come from: at most one of `dataset`, `datasets` and `cases`.
#[derive(Debug, PartialEq)]
pub(super) enum Source {
    /// The feature's `config/evals/<feature>/*.jsonl`.
    FeatureFiles,
    /// These files, in this order.
    Files(Vec<PathBuf>),
    /// Inline cases.
    Cases(Vec<Value>),
}

impl EvalRequest {
    /// The request from its JSON text (already checked to be a JSON object).
    pub(super) fn parse(text: &str) -> Result<EvalRequest, Failure> {
        serde_json::from_str(text).map_err(|error| wrong_shape("request_json", error))
    }

    /// The source of the cases; naming two of them is refused.
    pub(super) fn source(&mut self) -> Result<Source, Failure> {
        let given: Vec<&str> = [
            ("dataset", self.dataset.is_some()),
            ("datasets", self.datasets.is_some()),
            ("cases", self.cases.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, present)| present.then_some(key))
        .collect();
        if given.len() > 1 {
            return Err(wrong_shape(
                "request_json",
                format!(
                    "it gives {}: give at most one of dataset, datasets or cases",
                    given.join(" and ")
                ),
            ));
        }
        Ok(if let Some(path) = self.dataset.take() {
            Source::Files(vec![PathBuf::from(path)])
        } else if let Some(paths) = self.datasets.take() {
            if paths.is_empty() {
                return Err(wrong_shape(
                    "request_json",
                    "datasets is empty: name at least one file, or leave it out for the \
                     feature's own datasets",
                ));
            }
            Source::Files(paths.into_iter().map(PathBuf::from).collect())
        } else if let Some(cases) = self.cases.take() {
            Source::Cases(cases)
        } else {
            Source::FeatureFiles
        })
    }

    /// The options, from the defaults of [`EvalOptions`] (the core checks their ranges).
    pub(super) fn options(&self) -> EvalOptions {
        let mut options = EvalOptions::default();
        if let Some(versions) = &self.versions {
            options = options.versions(versions.iter().cloned());
        }
        if let Some(repeat) = self.repeat {
            options = options.repeat(repeat);
        }
        if let Some(concurrency) = self.concurrency {
            options = options.concurrency(concurrency);
        }
        if let Some(model) = &self.model {
            options = options.model(model.clone());
        }
        if let Some(rate) = self.case_pass_rate {
            options = options.case_pass_rate(rate);
        }
        if let Some(rate) = self.min_pass_rate {
            options = options.min_pass_rate(rate);
        }
        options
    }
}

/// The dataset a source names, read by the core's dataset reader.
pub(super) fn load(engine: &Engine, feature: &str, source: Source) -> crate::Result<Dataset> {
    match source {
        Source::FeatureFiles => Dataset::for_feature(&engine.options().paths.config_dir, feature),
        Source::Files(files) => Dataset::load_all(&files),
        Source::Cases(cases) => Ok(Dataset::from_values(&cases)?),
    }
}

/// Runs an evaluation of `feature`: every case against every version, `repeat` times, and
/// hands back the report. Blocks the calling thread for the whole run.
///
/// `request_json` is a JSON object, every key optional:
/// `{"dataset": "evals/smoke.jsonl"}` (one JSONL file), or `{"datasets": ["a.jsonl",
/// "b.jsonl"]}` (loaded as one dataset), or `{"cases": [{...}, ...]}` (cases inline, each an
/// object in the dataset line shape: `id`, `context`, `assertions`, ...; problems name them
/// `cases:<1-based index>`); with none of the three, the feature's own
/// `<config_dir>/evals/<feature>/*.jsonl`. Relative paths are read from the working directory.
/// Options: `"versions": ["2.0.0", "2.1.0"]` (pinned, drafts included; default the active
/// version), `"repeat": 1` (runs per case and version), `"concurrency": 4` (runs in flight),
/// `"model": "openai/gpt-4o"` (replaces every version's chain), `"case_pass_rate": null`
/// (0..1, the rate a case needs when it sets none; default 1, or 0.8 with a judge assertion),
/// `"min_pass_rate": 1.0` (0..1, the share of cases each version needs). An unknown key is
/// refused.
///
/// On success `*report_json` is the report (the shape of `prompt-config eval --json`: `run_id`,
/// `feature`, `dataset`, `started_at`, `duration_ms`, `repeat`, `concurrency`, `model`, `mock`,
/// `min_pass_rate`, `versions` (each with `version`, `cases` (each with `id`, `location`,
/// `judged`, `threshold`, `runs` (each with its graded `assertions`), `passes`, `pass_rate`,
/// `required_pass_rate`, `mean_score`, `passed`), `cases_total`, `cases_passed`, `pass_rate`,
/// `mean_score`, `cost_usd`, `judge_cost_usd`, `latency_ms` (`p50`, `p95`, `p99`),
/// `invalid_output_rate`, `errors`, `skipped_assertions`, `passed`), `comparisons` (each later
/// version against the first: `baseline`, `candidate`, `difference`, `p_value`, `verdict`,
/// `summary`, ...), `passed`), to free with `pc_string_free`; on failure it is NULL. An
/// evaluation whose cases failed is still `PC_OK`: read the report's `passed`.
///
/// Statuses: `PC_INVALID_DATASET` (every problem, `file:line: /pointer: message`, in
/// `details.problems`; also no dataset file in the feature's folder), `PC_IO` (a dataset file
/// that cannot be read, `details.path`), `PC_UNKNOWN_FEATURE`, `PC_UNKNOWN_VERSION`, `PC_UNKNOWN_MODEL`,
/// `PC_INVALID_ARGUMENT` (NULL, invalid UTF-8 or JSON, an unknown key or a value of the wrong
/// type (the message names it), two of `dataset`, `datasets` and `cases`, `repeat` or
/// `concurrency` 0, a pass rate outside 0..1, a model not written `provider/name`:
/// `details.argument` names the option). A call that fails inside a run (a budget, an outage)
/// fails that run, recorded in the report.
///
/// # Safety
/// `engine` is NULL or an open handle; `feature` and `request_json` are NULL or
/// NUL-terminated; `report_json` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_evaluate(
    engine: *const pc_engine,
    feature: *const c_char,
    request_json: *const c_char,
    report_json: *mut *mut c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_evaluate", error, || {
            let out = Out::new(report_json, "report_json")?;
            let engine = engine_arg(engine)?;
            let feature = text_arg(feature, "feature")?;
            let mut request = EvalRequest::parse(json_object_text(request_json, "request_json")?)?;
            let source = request.source()?;
            let dataset = load(engine, feature, source)?;
            let report = engine.evaluate(feature, &dataset, &request.options())?;
            out.set_json(&report)
        })
    }
}
