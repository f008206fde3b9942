//! `validate`, and the edit commands `release` and `rollback`. The edits themselves live in
//! `prompt_config::edit`; what they print is in [`print_edit`] alone.

use super::args::Dirs;
use super::{Failure, count, engine_options};
use prompt_config::Engine;
use prompt_config::edit::{EditOutcome, release_version, rollback_active_version};

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
