//! `PromptConfig::Native::Engine#evaluate_native`: an evaluation from Ruby. The Ruby arguments
//! become the core's inputs here (dataset paths, inline cases as JSON, `EvalOptions`); the
//! dataset is read by the core's own reader and the options are checked by the core, so a
//! dataset or an option means the same from Ruby, C, Rust and the CLI. The run (file reads
//! included) happens with the GVL released; the report comes back as a deep-frozen Hash with
//! Symbol keys, which `lib/prompt_config/evaluation.rb` wraps in `PromptConfig::EvalReport`.

use std::path::PathBuf;
use std::sync::Arc;

use magnus::{Error, RArray, Ruby, Value, prelude::*};
use prompt_config_core::Engine;
use prompt_config_core::eval::{Dataset, EvalOptions};
use serde_json::Value as Json;

use crate::convert::to_json;
use crate::errors;
use crate::serialize::Keys;

/// Where the cases come from.
enum Source {
    /// The feature's `config/evals/<feature>/*.jsonl`.
    FeatureFiles,
    /// These files, loaded as one dataset.
    Files(Vec<PathBuf>),
    /// Inline cases, each in the dataset line shape.
    Cases(Vec<Json>),
}

/// The Ruby arguments of one evaluation, as `evaluation.rb` passes them.
pub struct Arguments {
    /// nil, or an Array of path Strings.
    pub datasets: Option<Vec<String>>,
    /// nil, or an Array of Hashes (String or Symbol keys).
    pub cases: Value,
    /// nil, or an Array of version Strings.
    pub versions: Option<Vec<String>>,
    /// Runs per case and version.
    pub repeat: i64,
    /// Runs in flight at once.
    pub concurrency: i64,
    /// `provider/name`, or nil.
    pub model: Option<String>,
    /// The pass rate of cases that set none, or nil.
    pub case_pass_rate: Option<f64>,
    /// The share of cases each version must pass.
    pub min_pass_rate: f64,
}

/// Runs the evaluation with the GVL released and returns the report Hash (frozen).
pub fn evaluate(
    ruby: &Ruby,
    engine: &Arc<Engine>,
    feature: String,
    arguments: Arguments,
) -> Result<Value, Error> {
    let source = source(ruby, &arguments)?;
    let options = options(ruby, &arguments)?;
    let engine = Arc::clone(engine);
    let outcome = crate::released(ruby, move || {
        let dataset = load(&engine, &feature, source)?;
        engine.evaluate(&feature, &dataset, &options)
    })?;
    match outcome {
        Ok(report) => crate::serialized(ruby, &report, Keys::Symbols, true),
        Err(error) => Err(errors::core_error(ruby, &error)),
    }
}

fn source(ruby: &Ruby, arguments: &Arguments) -> Result<Source, Error> {
    if let Some(paths) = &arguments.datasets {
        if !arguments.cases.is_nil() {
            return Err(errors::invalid_argument(
                ruby,
                "dataset",
                "wrong_shape",
                "give dataset: or cases:, not both",
            ));
        }
        if paths.is_empty() {
            return Err(errors::invalid_argument(
                ruby,
                "dataset",
                "wrong_shape",
                "dataset: is an empty Array: name at least one file, or leave it out for the \
                 feature's own datasets",
            ));
        }
        return Ok(Source::Files(paths.iter().map(PathBuf::from).collect()));
    }
    if arguments.cases.is_nil() {
        return Ok(Source::FeatureFiles);
    }
    if RArray::from_value(arguments.cases).is_none() {
        return Err(Error::new(
            ruby.exception_type_error(),
            "cases: must be an Array of Hashes in the dataset line shape",
        ));
    }
    match to_json(ruby, arguments.cases)? {
        Json::Array(cases) => Ok(Source::Cases(cases)),
        _ => Err(Error::new(
            ruby.exception_type_error(),
            "cases: must be an Array of Hashes in the dataset line shape",
        )),
    }
}

fn options(ruby: &Ruby, arguments: &Arguments) -> Result<EvalOptions, Error> {
    // Out of the core's integer types: refused as the core refuses 0, naming the option.
    let out_of_range = |argument: &str, value: i64| {
        errors::invalid_argument(
            ruby,
            argument,
            "out_of_range",
            &format!("{argument}: {value} is not a positive count"),
        )
    };
    let repeat =
        u32::try_from(arguments.repeat).map_err(|_| out_of_range("repeat", arguments.repeat))?;
    let concurrency = usize::try_from(arguments.concurrency)
        .map_err(|_| out_of_range("concurrency", arguments.concurrency))?;
    let mut options = EvalOptions::default()
        .repeat(repeat)
        .concurrency(concurrency)
        .min_pass_rate(arguments.min_pass_rate);
    if let Some(versions) = &arguments.versions {
        options = options.versions(versions.iter().cloned());
    }
    if let Some(model) = &arguments.model {
        options = options.model(model.clone());
    }
    if let Some(rate) = arguments.case_pass_rate {
        options = options.case_pass_rate(rate);
    }
    Ok(options)
}

/// The dataset a source names, read by the core's reader (without the GVL: files are read).
fn load(engine: &Engine, feature: &str, source: Source) -> prompt_config_core::Result<Dataset> {
    match source {
        Source::FeatureFiles => Dataset::for_feature(&engine.options().paths.config_dir, feature),
        Source::Files(files) => Dataset::load_all(&files),
        Source::Cases(cases) => Ok(Dataset::from_values(&cases)?),
    }
}
