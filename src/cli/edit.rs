//! `validate`, and the edit commands `release` and `rollback`. The edits themselves live in
//! `prompt_config::edit`; what they print is in [`print_edit`] alone. `release --require-eval`
//! evaluates the version first and releases only a passing one.

use std::path::{Path, PathBuf};

use super::args::Dirs;
use super::{Failure, count, engine_options};
use prompt_config::Engine;
use prompt_config::edit::{
    EditOutcome, check_releasable, release_version, rollback_active_version,
};
use prompt_config::eval::EvalOptions;

/// `validate`: a one-line summary (or its JSON), or every problem with exit 1.
pub fn validate(dirs: &Dirs, json: bool) -> Result<(), Failure> {
    let options = engine_options(dirs);
    let summary = Engine::validate(&options)?;
    if json {
        super::output::print_json(&summary);
        return Ok(());
    }
    say!(
        "ok: {}, {}, {}, {}, {}, {} (revision {}) in {}",
        count(summary.features, "feature"),
        count(summary.versions, "version"),
        count(summary.running_experiments, "running experiment"),
        count(summary.rules, "rule"),
        count(summary.rollouts, "rollout"),
        count(summary.providers, "provider"),
        summary.revision,
        options.paths.config_dir.display(),
    );
    Ok(())
}

/// `release FEATURE VERSION`.
pub fn release(dirs: &Dirs, feature: &str, version: &str, json: bool) -> Result<(), Failure> {
    print_edit(
        &release_version(&engine_options(dirs).paths, feature, version)?,
        json,
    );
    Ok(())
}

/// `release FEATURE VERSION --require-eval [DATASET]`: the version's evaluation (the feature's
/// datasets, or `dataset`) runs first; a failing one refuses the release with
/// `evaluation_failed`, naming the failing cases (their reasons on stderr), and leaves every
/// file as it was.
pub fn release_after_eval(
    dirs: &Dirs,
    feature: &str,
    version: &str,
    dataset: Option<&Path>,
    repeat: u32,
    mock: bool,
    json: bool,
) -> Result<(), Failure> {
    let options = engine_options(dirs).with_mock(mock);
    let files: Vec<PathBuf> = dataset.map(Path::to_path_buf).into_iter().collect();
    let engine = Engine::open(options.clone())?;
    super::cache::known_feature(&engine.snapshot().feature_names(), feature)?;
    // Before any case runs: an evaluation of a version that cannot be released is money spent
    // for a refusal.
    check_releasable(&options.paths, feature, version)?;
    let dataset = super::eval::load_dataset(&options, feature, &files)?;
    let eval = EvalOptions::default().versions([version]).repeat(repeat);
    let report = super::eval::evaluate(&engine, feature, &dataset, &eval)?;
    if let Err(refused) = report.release_gate(version) {
        let failing = report.versions.iter().flat_map(|result| &result.cases);
        for case in failing.filter(|case| !case.passed) {
            let mut text = format!("{}: {}", case.id, case.failure_summary());
            for reason in case.failure_reasons() {
                for line in super::eval::reason_lines(&reason, "  ") {
                    text.push('\n');
                    text.push_str(&line);
                }
            }
            super::output::write_error(&text);
        }
        return Err(prompt_config::Error::from(refused).into());
    }
    let (passed, total) = report
        .versions
        .first()
        .map_or((0, 0), |result| (result.cases_passed, result.cases_total));
    super::output::write_error(&format!(
        "evaluation of {feature} {version} on {}: passed ({passed} of {total} cases)",
        report.dataset
    ));
    print_edit(&release_version(&options.paths, feature, version)?, json);
    Ok(())
}

/// `rollback FEATURE --to VERSION`.
pub fn rollback(dirs: &Dirs, feature: &str, to: &str, json: bool) -> Result<(), Failure> {
    print_edit(
        &rollback_active_version(&engine_options(dirs).paths, feature, to)?,
        json,
    );
    Ok(())
}

/// The one place that reports an edit's outcome: its summary (what changed or that nothing
/// did, and for a rollback its reach) or, with `--json`, the same as data.
fn print_edit(outcome: &EditOutcome, json: bool) {
    if json {
        super::output::print_json(outcome);
    } else {
        say!("{outcome}");
    }
}
