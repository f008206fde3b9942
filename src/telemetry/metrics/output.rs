//! Structured output metrics: answers validated against a version's output schema or tools,
//! those that were invalid, and repair attempts, per feature, version, provider and model (the
//! model that answered, which a failover may change within one call). The invalid-output rate
//! of a series is `invalid_outputs / answers`. The three families are named
//! `prompt_config_output_*` so they sort together, between `prompt_config_feedback` and
//! `prompt_config_requests_total`, where the exposition writes them.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// `prompt_config_output_answers_total`.
pub(super) const ANSWERS: &str = "prompt_config_output_answers_total";
/// `prompt_config_output_invalid_total`.
pub(super) const INVALID: &str = "prompt_config_output_invalid_total";
/// `prompt_config_output_repairs_total`.
pub(super) const REPAIRS: &str = "prompt_config_output_repairs_total";

/// Labels of one structured-output series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLabels<'a> {
    /// The feature (`gen_ai.prompt.name`).
    pub feature: &'a str,
    /// The prompt version (`gen_ai.prompt.version`).
    pub version: &'a str,
    /// The provider that answered (`gen_ai.provider.name`).
    pub provider: &'a str,
    /// The model that answered (`gen_ai.request.model`).
    pub model: &'a str,
}

#[derive(Debug, Default, Clone, Copy)]
struct OutputTotals {
    answers: u64,
    invalid: u64,
    repairs: u64,
}

/// Totals by feature, version, provider and model: nested so recording into an existing
/// series looks it up by `&str`, without allocating its key.
type Series =
    BTreeMap<String, BTreeMap<String, BTreeMap<String, BTreeMap<String, OutputTotals>>>>;

/// The structured-output counters.
#[derive(Debug, Default)]
pub(super) struct OutputCounters(Mutex<Series>);

impl OutputCounters {
    pub(super) fn record(&self, labels: &OutputLabels<'_>, invalid: bool, repair: bool) {
        let mut series = self.0.lock();
        let existing = series
            .get_mut(labels.feature)
            .and_then(|versions| versions.get_mut(labels.version))
            .and_then(|providers| providers.get_mut(labels.provider))
            .and_then(|models| models.get_mut(labels.model));
        let totals = match existing {
            Some(totals) => totals,
            None => series
                .entry(labels.feature.to_string())
                .or_default()
                .entry(labels.version.to_string())
                .or_default()
                .entry(labels.provider.to_string())
                .or_default()
                .entry(labels.model.to_string())
                .or_default(),
        };
        totals.answers += 1;
        totals.invalid += u64::from(invalid);
        totals.repairs += u64::from(repair);
    }

    pub(super) fn snapshot(&self) -> Vec<OutputSnapshot> {
        let series = self.0.lock();
        let mut snapshots = Vec::new();
        for (feature, versions) in series.iter() {
            for (version, providers) in versions {
                for (provider, models) in providers {
                    for (model, totals) in models {
                        snapshots.push(OutputSnapshot {
                            feature: feature.clone(),
                            version: version.clone(),
                            provider: provider.clone(),
                            model: model.clone(),
                            answers: totals.answers,
                            invalid_outputs: totals.invalid,
                            invalid_output_rate: rate(totals.invalid, totals.answers),
                            repairs: totals.repairs,
                        });
                    }
                }
            }
        }
        snapshots
    }
}

/// A family's name, help text and count of one series.
type Family = (&'static str, &'static str, fn(&OutputSnapshot) -> u64);

/// The three families in Prometheus text, `# HELP`/`# TYPE` always present.
pub(super) fn render(series: &[OutputSnapshot], out: &mut impl Write) -> fmt::Result {
    let families: [Family; 3] = [
        (
            ANSWERS,
            "Answers validated against a version's output schema or tool schemas, valid or not.",
            |entry| entry.answers,
        ),
        (
            INVALID,
            "Answers that broke the output schema or a tool's argument schema (attempt outcome \
             invalid_output); the invalid-output rate is this over the answers.",
            |entry| entry.invalid_outputs,
        ),
        (
            REPAIRS,
            "Repair attempts: an invalid answer sent back to the same model with its validation \
             errors.",
            |entry| entry.repairs,
        ),
    ];
    for (name, help, count) in families {
        writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter")?;
        for entry in series {
            writeln!(out, "{name}{{{}}} {}", labels(entry), count(entry))?;
        }
    }
    Ok(())
}

fn labels(entry: &OutputSnapshot) -> String {
    let escape = |value: &str| {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    format!(
        "gen_ai_prompt_name=\"{}\",gen_ai_prompt_version=\"{}\",gen_ai_provider_name=\"{}\",\
         gen_ai_request_model=\"{}\"",
        escape(&entry.feature),
        escape(&entry.version),
        escape(&entry.provider),
        escape(&entry.model)
    )
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Structured-output counters of one feature, version, provider and model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSnapshot {
    /// The feature.
    pub feature: String,
    /// The prompt version.
    pub version: String,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered.
    pub model: String,
    /// Answers validated (valid or not).
    pub answers: u64,
    /// Answers that were invalid.
    pub invalid_outputs: u64,
    /// `invalid_outputs / answers`, 0 to 1.
    pub invalid_output_rate: f64,
    /// Repair attempts made on this model.
    pub repairs: u64,
}
