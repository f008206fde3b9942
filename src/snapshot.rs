//! One immutable, fully validated view of the configuration and prompts. The engine serves from
//! a snapshot and swaps in a new one on reload, so readers never see a half-loaded state.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::client::{ProviderKinds, ProviderTable};
use crate::config::{BudgetSettings, ConfigError, FileDigest, load_config};
use crate::paths::Paths;
use crate::prompt::compile_prompts;
use crate::resolve::{CompiledFeature, compile_features};
use crate::telemetry::alerts::config::load_alerts;

/// Counts of what a snapshot holds, for `validate` and reload reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Features loaded.
    pub features: usize,
    /// Prompt versions across all features.
    pub versions: usize,
    /// Running experiments.
    pub running_experiments: usize,
    /// Targeting rules.
    pub rules: usize,
    /// Features with a rollout.
    pub rollouts: usize,
    /// Providers configured.
    pub providers: usize,
    /// The config revision.
    pub revision: String,
}

/// A validated configuration, ready to resolve from.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) features: HashMap<String, CompiledFeature>,
    pub(crate) providers: ProviderTable,
    /// Feature budgets by feature name.
    pub(crate) budgets: HashMap<String, BudgetSettings>,
    pub(crate) revision: String,
    /// `config/alerts.json`, checked with the rest; `None` when absent (alerts off).
    pub(crate) alerts: Option<std::sync::Arc<crate::telemetry::alerts::config::AlertsConfig>>,
}

impl Snapshot {
    /// Loads and validates everything under `paths`; every problem is reported at once
    /// (`ConfigError::Invalid`, each problem naming its file and JSON pointer). Provider kinds
    /// are checked against the built-in ones (`openai`, `anthropic`, `openai_compatible`,
    /// `mock`); an engine with kinds of its own checks against those when it opens.
    pub fn load(paths: &Paths) -> Result<Snapshot, ConfigError> {
        let kinds = ProviderKinds::builtin();
        Snapshot::load_checked(paths, &|kind| kinds.contains(kind), &[])
    }

    /// Loads as [`Snapshot::load`] does, accepting the provider kinds of `kinds`.
    pub(crate) fn load_with_kinds(
        paths: &Paths,
        kinds: &ProviderKinds,
    ) -> Result<Snapshot, ConfigError> {
        Snapshot::load_checked(paths, &|kind| kinds.contains(kind), &[])
    }

    /// Loads as [`Snapshot::load`] would if the files in `overrides` had the given content,
    /// accepting the provider kinds `is_known_kind` accepts.
    pub(crate) fn load_checked(
        paths: &Paths,
        is_known_kind: &dyn Fn(&str) -> bool,
        overrides: &[(PathBuf, Vec<u8>)],
    ) -> Result<Snapshot, ConfigError> {
        let mut problems = Vec::new();
        let loaded = load_config(&paths.config_dir, overrides, &mut problems);
        let feature_names: Option<Vec<&str>> = loaded.as_ref().map(|loaded| {
            let names = loaded.features.iter().map(|f| f.config.feature.as_str());
            names.collect()
        });
        let mut alerts_source = Vec::new();
        let alerts = load_alerts(
            &paths.config_dir,
            overrides,
            feature_names.as_deref(),
            &mut problems,
            &mut alerts_source,
        );
        drop(feature_names);
        let Some(mut loaded) = loaded else {
            return Err(ConfigError::Invalid { problems });
        };
        loaded.sources.extend(alerts_source);
        let prompts = compile_prompts(
            &paths.prompts_dir,
            &loaded.features,
            &mut problems,
            &mut loaded.sources,
        );
        let features = compile_features(&loaded.features, &prompts, &mut problems);
        let providers = ProviderTable::compile(&loaded.providers, is_known_kind, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { problems });
        }
        let budgets = loaded
            .features
            .iter()
            .filter_map(|feature| {
                Some((
                    feature.config.feature.clone(),
                    feature.config.budget.clone()?,
                ))
            })
            .collect();
        Ok(Snapshot {
            budgets,
            features,
            providers,
            revision: revision(&loaded.sources),
            alerts: alerts.map(std::sync::Arc::new),
        })
    }

    /// The alert rules and channels of `config/alerts.json`, or `None` when there is no such
    /// file (alerts are off).
    pub fn alerts(&self) -> Option<&crate::telemetry::alerts::config::AlertsConfig> {
        self.alerts.as_deref()
    }

    /// A short hash of every file loaded.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The providers and their models, compiled.
    pub fn providers(&self) -> &ProviderTable {
        &self.providers
    }

    /// The compiled feature `name`, or `unknown_feature` listing the configured ones.
    pub(crate) fn feature(
        &self,
        name: &str,
    ) -> Result<&crate::resolve::CompiledFeature, crate::resolve::ResolveError> {
        self.features
            .get(name)
            .ok_or_else(|| crate::resolve::ResolveError::UnknownFeature {
                feature: name.to_string(),
                known: self
                    .feature_names()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            })
    }

    /// `Ok` when `providers.json` lists model `name` of `provider`, else `unknown_model`
    /// listing every model: the rule of a model override, wherever it is given.
    pub(crate) fn check_model(
        &self,
        provider: &str,
        name: &str,
    ) -> Result<(), crate::resolve::ResolveError> {
        let listed = self
            .providers
            .providers
            .get(provider)
            .is_some_and(|compiled| compiled.models.contains_key(name));
        if listed {
            Ok(())
        } else {
            Err(crate::resolve::ResolveError::UnknownModel {
                model: format!("{provider}/{name}"),
                known: self.model_names(),
            })
        }
    }

    /// Every model `providers.json` lists, as `provider/name`, sorted.
    pub fn model_names(&self) -> Vec<String> {
        self.providers
            .providers
            .iter()
            .flat_map(|(provider, compiled)| {
                compiled
                    .models
                    .keys()
                    .map(move |name| format!("{provider}/{name}"))
            })
            .collect()
    }

    /// The names of the features, sorted.
    pub fn feature_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.features.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Counts of what this snapshot holds.
    pub fn summary(&self) -> Summary {
        let features = self.features.values();
        Summary {
            features: self.features.len(),
            versions: features.clone().map(|feature| feature.pinnable.len()).sum(),
            running_experiments: features
                .clone()
                .map(|feature| feature.experiments.len())
                .sum(),
            rules: features.clone().map(|feature| feature.rules.len()).sum(),
            rollouts: features.filter(|feature| feature.rollout.is_some()).count(),
            providers: self.providers.providers.len(),
            revision: self.revision.clone(),
        }
    }
}

/// The first 12 hex digits of a SHA-256 over every file read, in path order: each file's path,
/// a zero byte, its length (u64, little-endian) and its own SHA-256.
fn revision(sources: &[FileDigest]) -> String {
    let mut sorted: Vec<&FileDigest> = sources.iter().collect();
    sorted.sort_by(|left, right| left.path.cmp(&right.path));
    let mut hasher = Sha256::new();
    for file in sorted {
        hasher.update(file.path.as_bytes());
        hasher.update([0]);
        hasher.update(file.len.to_le_bytes());
        hasher.update(file.sha256);
    }
    let digest = hasher.finalize();
    digest
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Names, sizes and modification times of every file under the two directories: cheap to take
/// and compare, so `reload_if_changed` only reloads when something on disk moved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

impl Fingerprint {
    pub(crate) fn scan(paths: &Paths) -> Fingerprint {
        let mut entries = Vec::new();
        collect(&paths.config_dir, &mut entries, 0);
        collect(&paths.prompts_dir, &mut entries, 0);
        entries.sort();
        Fingerprint(entries)
    }
}

/// Deep enough for `prompts/<feature>/<version>/<subfolder>/file`; bounded so a symlink loop
/// cannot recurse forever.
const MAX_DEPTH: usize = 8;

fn collect(directory: &Path, entries: &mut Vec<(PathBuf, u64, Option<SystemTime>)>, depth: usize) {
    let Ok(read) = std::fs::read_dir(directory) else {
        entries.push((directory.to_path_buf(), u64::MAX, None));
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        // A directory entry that is itself a directory (not a symlink to one) needs no stat:
        // the type comes with the listing, which saves thousands of calls for 1,000 features.
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            if depth < MAX_DEPTH {
                collect(&path, entries, depth + 1);
            }
            continue;
        }
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            if depth < MAX_DEPTH {
                collect(&path, entries, depth + 1);
            }
        } else {
            entries.push((path, metadata.len(), metadata.modified().ok()));
        }
    }
}
