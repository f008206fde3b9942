//! Reads `providers.json` and `features/*.json` from a config directory into typed documents,
//! collecting syntax, schema and cross-reference problems instead of stopping at the first.

use std::fs;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::Problem;
use super::json::{JsonProblem, parse_strict};
use super::model::{FeatureConfig, ProvidersConfig};
use super::references;
use super::schema::{self, SchemaKind};

/// One feature document that parsed and passed its schema.
#[derive(Debug, Clone)]
pub(crate) struct LoadedFeature {
    /// The file as displayed in problems.
    pub file: String,
    /// The typed document.
    pub config: FeatureConfig,
}

/// One file a snapshot read, as the config revision needs it. Only the digest is kept, not the
/// bytes: a thousand features' files would otherwise be held until the load ends.
#[derive(Debug, Clone)]
pub(crate) struct FileDigest {
    /// The file as displayed in problems.
    pub path: String,
    /// Its length in bytes.
    pub len: u64,
    /// SHA-256 of its bytes.
    pub sha256: [u8; 32],
}

impl FileDigest {
    /// The digest of `bytes`, read from `path`.
    pub(crate) fn of(path: String, bytes: &[u8]) -> FileDigest {
        FileDigest {
            path,
            len: bytes.len() as u64,
            sha256: Sha256::digest(bytes).into(),
        }
    }
}

/// The configuration directory as read: typed documents plus the digest of every file, which
/// feed the config revision.
#[derive(Debug, Clone)]
pub(crate) struct LoadedConfig {
    pub providers: ProvidersConfig,
    pub features: Vec<LoadedFeature>,
    /// Each file read, in a stable order.
    pub sources: Vec<FileDigest>,
}

/// Reads and checks the config directory. Returns `None` when a problem stops typed loading
/// (for example providers.json missing); every problem found is pushed to `problems`.
/// `overrides` replace the content of the files they name, so an edit can be validated before
/// it is written.
pub(crate) fn load_config(
    config_dir: &Path,
    overrides: &[(PathBuf, Vec<u8>)],
    problems: &mut Vec<Problem>,
) -> Option<LoadedConfig> {
    let read = |path: &Path| match overrides.iter().find(|(overridden, _)| overridden == path) {
        Some((_, bytes)) => Ok(bytes.clone()),
        None => fs::read(path),
    };
    let mut sources = Vec::new();
    let providers_path = config_dir.join("providers.json");
    let providers: Option<ProvidersConfig> = parse_document(
        &providers_path,
        read(&providers_path),
        SchemaKind::Providers,
        problems,
        &mut sources,
    );

    let features_dir = config_dir.join("features");
    let mut features = Vec::new();
    for path in feature_files(&features_dir, problems) {
        let file = path.display().to_string();
        let Some(config) = parse_document::<FeatureConfig>(
            &path,
            read(&path),
            SchemaKind::Feature,
            problems,
            &mut sources,
        ) else {
            continue;
        };
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default();
        if config.feature != stem {
            problems.push(Problem::new(
                &file,
                "/feature",
                format!(
                    "feature \"{}\" must equal the file name \"{stem}\"",
                    config.feature
                ),
            ));
        }
        features.push(LoadedFeature { file, config });
    }

    let providers = providers?;
    for feature in &features {
        problems.extend(references::check_feature(
            &feature.file,
            &feature.config,
            &providers,
        ));
    }
    Some(LoadedConfig {
        providers,
        features,
        sources,
    })
}

/// The `*.json` files of `features/`, sorted so problems and revisions are stable.
fn feature_files(features_dir: &Path, problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    let entries = match fs::read_dir(features_dir) {
        Ok(entries) => entries,
        Err(error) => {
            problems.push(Problem::new(
                features_dir.display().to_string(),
                "",
                format!("cannot read the features directory: {error}"),
            ));
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    paths.sort();
    paths
}

/// Parses one JSON document, checks it against its schema and deserializes it.
fn parse_document<T: DeserializeOwned>(
    path: &Path,
    content: std::io::Result<Vec<u8>>,
    kind: SchemaKind,
    problems: &mut Vec<Problem>,
    sources: &mut Vec<FileDigest>,
) -> Option<T> {
    let file = path.display().to_string();
    let bytes = match content {
        Ok(bytes) => bytes,
        Err(error) => {
            problems.push(Problem::new(
                &file,
                "",
                format!("cannot read file: {error}"),
            ));
            return None;
        }
    };
    let parsed = parse_strict(&bytes);
    sources.push(FileDigest::of(file.clone(), &bytes));
    drop(bytes);
    let document = match parsed {
        Ok(document) => document,
        Err(problem) => {
            for (pointer, message) in problem.located() {
                problems.push(Problem::new(&file, pointer, message));
            }
            // A document with duplicate keys still parsed: check the rest of it too, so one
            // run lists every problem. It is never served (the load fails).
            match problem {
                JsonProblem::DuplicateKeys { document, .. } => *document,
                _ => return None,
            }
        }
    };
    let schema_problems = schema::check(kind, &file, &document);
    if !schema_problems.is_empty() {
        problems.extend(schema_problems);
        return None;
    }
    match serde_json::from_value(document) {
        Ok(typed) => Some(typed),
        Err(error) => {
            problems.push(Problem::new(
                &file,
                "",
                format!("unexpected shape: {error}"),
            ));
            None
        }
    }
}
