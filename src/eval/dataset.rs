//! Datasets: JSONL files of cases, one per line (`config/evals/<feature>/*.jsonl`, or a path
//! given on the command line), checked against `config/schema/eval_dataset_schema.json` and
//! compiled (regexes, JSON paths, schemas) once, with every problem reported as
//! `file:line: /pointer: message`. Loading reads the file as bytes, so a line that is not
//! UTF-8 is one problem among the others rather than the end of the read; blank lines are
//! skipped; a byte order mark at the start of the file is ignored.
//!
//! Every problem of every file is collected before failing, in file then line order, in one
//! [`EvalError::InvalidDataset`]: a dataset is edited by hand, and a person fixes a file in
//! one pass when they see all of it at once.

mod parse;
mod write;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{DatasetProblem, EvalError};
use crate::resolve::Context;

use super::Assertion;

/// The dataset schema's text as shipped in `config/schema/eval_dataset_schema.json`, compiled
/// into the library so a dataset is checked with the schema the library was built with.
pub const DATASET_SCHEMA: &str = include_str!("../../config/schema/eval_dataset_schema.json");

/// The cases of one or more dataset files, in file then line order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Dataset {
    /// What the dataset is called in reports: the file stem (`smoke`), or the stems joined
    /// with `+` when several files were loaded together.
    pub name: String,
    /// The cases; ids are unique across the dataset.
    pub cases: Vec<Case>,
}

/// One case: who asks what, and what the answer must satisfy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Case {
    /// The case's id, unique within the dataset (`tech-bsc-3-skills`).
    pub id: String,
    /// What the case is about, for reports.
    pub description: Option<String>,
    /// Where the case was read (`config/evals/career_path_navigator/smoke.jsonl`, line 4).
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// The context sent (subject, attributes, variables, history); never a pinned version:
    /// the evaluation pins each version it runs.
    pub context: Context,
    /// What the answer must satisfy.
    pub assertions: Vec<Assertion>,
    /// The share of repeats that must pass for the case to pass (0..=1); `None` takes the
    /// options' rate, else [`DEFAULT_CASE_PASS_RATE`](super::DEFAULT_CASE_PASS_RATE) or, with
    /// a judge assertion, [`DEFAULT_JUDGED_CASE_PASS_RATE`](super::DEFAULT_JUDGED_CASE_PASS_RATE).
    pub pass_rate: Option<f64>,
    /// With a threshold, a repeat passes when the weighted mean score of its assertions reaches
    /// it (0..=1); without one, when every assertion of non-zero weight passes.
    pub threshold: Option<f64>,
    /// Free labels (`edge`, `healthcare`) for reports and filters.
    pub tags: Vec<String>,
}

/// The name of a dataset of inline cases ([`Dataset::from_values`]).
pub const INLINE_DATASET: &str = "cases";

impl Dataset {
    /// A dataset of cases built in code.
    pub fn new(name: impl Into<String>, cases: Vec<Case>) -> Dataset {
        Dataset {
            name: name.into(),
            cases,
        }
    }

    /// Parses the JSONL `text` of the dataset file `file` (named in problems as given; the
    /// dataset is named after its stem: `evals/smoke.jsonl` gives `smoke`).
    ///
    /// Errors: [`EvalError::InvalidDataset`] with every problem of the file: a line that is
    /// not JSON, a case the dataset schema refuses (each violation with its pointer), a
    /// context that pins a `version`, a duplicate id, a regex, JSON path or assertion schema
    /// that does not compile, a `json_path` without exactly one of `equals` and `contains`,
    /// and a file without cases.
    pub fn parse(file: &str, text: &str) -> Result<Dataset, EvalError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines = text
            .split('\n')
            .map(|line| Ok(line.strip_suffix('\r').unwrap_or(line)));
        let parsed = parse::parse_lines(file, lines);
        finish(&[file.to_string()], vec![parsed])
    }

    /// Reads and parses the dataset file at `path` (see [`Dataset::parse`]); a line that is
    /// not UTF-8 is a problem naming the line and the byte.
    ///
    /// Errors: `io` naming the path when the file cannot be read; `invalid_dataset` as for
    /// [`Dataset::parse`].
    pub fn load(path: &Path) -> crate::Result<Dataset> {
        Dataset::load_all(&[path.to_path_buf()])
    }

    /// Reads several dataset files as one dataset (the cases in the order of `paths`, then of
    /// lines), named after their stems joined with `+` (`smoke+regressions`). Ids must be
    /// unique across the files.
    ///
    /// Errors: `io` for the first file that cannot be read; `invalid_dataset` with every
    /// problem of every file (no file at all is one).
    pub fn load_all(paths: &[PathBuf]) -> crate::Result<Dataset> {
        if paths.is_empty() {
            return Err(EvalError::InvalidDataset {
                problems: vec![DatasetProblem {
                    file: String::new(),
                    line: 0,
                    pointer: String::new(),
                    message: "no dataset file was given".into(),
                }],
            }
            .into());
        }
        let mut parsed = Vec::new();
        let mut files = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for path in paths {
            // A file named twice (`--dataset a.jsonl --dataset ./a.jsonl`) is read once: its
            // cases are not duplicates of themselves.
            let identity = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            if !seen.insert(identity) {
                continue;
            }
            let bytes = std::fs::read(path).map_err(|source| crate::config::ConfigError::Io {
                path: path.clone(),
                source,
            })?;
            let file = path.display().to_string();
            let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
            let lines = bytes.split(|byte| *byte == b'\n').map(|line| {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                std::str::from_utf8(line).map_err(|error| parse::not_utf8(line, error))
            });
            parsed.push(parse::parse_lines(&file, lines));
            files.push(file);
        }
        Ok(finish(&files, parsed)?)
    }

    /// Cases given as JSON values (each in the dataset line shape), as the C ABI and the gem
    /// take them inline: read by the same reader and rules as a file's lines, as one dataset
    /// named [`INLINE_DATASET`], so a problem reads `cases:<1-based index>: /pointer: ...`.
    pub fn from_values(cases: &[serde_json::Value]) -> Result<Dataset, EvalError> {
        let text = cases
            .iter()
            .map(serde_json::Value::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        Dataset::parse(INLINE_DATASET, &text)
    }

    /// Every dataset file of `feature` (see [`Dataset::feature_files`]) loaded as one dataset.
    pub fn for_feature(config_dir: &Path, feature: &str) -> crate::Result<Dataset> {
        Dataset::load_all(&Dataset::feature_files(config_dir, feature)?)
    }

    /// The dataset files of `feature`: `<config_dir>/evals/<feature>/*.jsonl`, sorted by name.
    ///
    /// Errors: `invalid_dataset` saying where it looked when there is none (or the directory
    /// does not exist); `io` when the directory cannot be read.
    pub fn feature_files(config_dir: &Path, feature: &str) -> crate::Result<Vec<PathBuf>> {
        let directory = config_dir.join("evals").join(feature);
        let none = || -> crate::Error {
            EvalError::InvalidDataset {
                problems: vec![DatasetProblem {
                    file: directory.display().to_string(),
                    line: 0,
                    pointer: String::new(),
                    message: format!(
                        "no dataset for feature {feature}: no *.jsonl file in this directory \
                         (write one, or give a dataset file)"
                    ),
                }],
            }
            .into()
        };
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(none()),
            Err(source) => {
                return Err(crate::config::ConfigError::Io {
                    path: directory.clone(),
                    source,
                }
                .into());
            }
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| crate::config::ConfigError::Io {
                path: directory.clone(),
                source,
            })?;
            let path = entry.path();
            if path
                .extension()
                .is_some_and(|extension| extension == "jsonl")
                && path.is_file()
            {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(none());
        }
        files.sort();
        Ok(files)
    }
}

/// The file stem (`smoke` for `config/evals/f/smoke.jsonl`), or the name as given.
fn stem(file: &str) -> String {
    Path::new(file)
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| file.to_string())
}

/// The dataset of what `files` gave (`parsed`, in the same order), or every problem: the
/// files' own and duplicate ids across them, sorted by file (in the order given) then line;
/// or a dataset without cases.
fn finish(files: &[String], parsed: Vec<parse::Parsed>) -> Result<Dataset, EvalError> {
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    let mut first: HashMap<String, (usize, usize)> = HashMap::new();
    for (index, file_parsed) in parsed.into_iter().enumerate() {
        for (id, line) in file_parsed.ids {
            match first.get(&id) {
                Some(&(earlier_file, earlier_line)) => problems.push(DatasetProblem {
                    file: files[index].clone(),
                    line,
                    pointer: "/id".into(),
                    message: format!(
                        "duplicate id {id:?}: {}:{earlier_line} has it already",
                        files[earlier_file]
                    ),
                }),
                None => {
                    first.insert(id, (index, line));
                }
            }
        }
        cases.extend(file_parsed.cases);
        problems.extend(file_parsed.problems);
    }
    let name = files
        .iter()
        .map(|file| stem(file))
        .collect::<Vec<_>>()
        .join("+");
    if cases.is_empty() && problems.is_empty() {
        problems.push(DatasetProblem {
            file: files.join(", "),
            line: 0,
            pointer: String::new(),
            message: "the dataset has no cases (the file is empty or holds only blank lines)"
                .into(),
        });
    }
    if !problems.is_empty() {
        // Stable: on one line, the line's own problems keep their order after a duplicate id.
        problems.sort_by_key(|problem| {
            let file = files.iter().position(|file| *file == problem.file);
            (file.unwrap_or(usize::MAX), problem.line)
        });
        return Err(EvalError::InvalidDataset { problems });
    }
    Ok(Dataset { name, cases })
}

/// A problem for every assertion that names a version `feature` does not have (`known`):
/// `file:line: /assertions/2/versions/0: ...`. The runner calls it before running anything,
/// since an assertion limited to a misspelt version would silently never apply.
pub(crate) fn check_versions(
    dataset: &Dataset,
    feature: &str,
    known: &[&str],
) -> Vec<DatasetProblem> {
    let mut problems = Vec::new();
    for case in &dataset.cases {
        for (index, assertion) in case.assertions.iter().enumerate() {
            for (position, version) in assertion.versions.iter().enumerate() {
                if !known.contains(&version.as_str()) {
                    let mut listed: Vec<&str> = known.to_vec();
                    listed.sort_unstable();
                    problems.push(DatasetProblem {
                        file: if case.file.is_empty() {
                            dataset.name.clone()
                        } else {
                            case.file.clone()
                        },
                        line: case.line,
                        pointer: format!("/assertions/{index}/versions/{position}"),
                        message: format!(
                            "{feature} has no version {version:?} (it has {})",
                            listed.join(", ")
                        ),
                    });
                }
            }
        }
    }
    problems
}

impl Case {
    /// A case built in code (no file; line 0), with no pass rate, threshold or tags.
    pub fn new(id: impl Into<String>, context: Context, assertions: Vec<Assertion>) -> Case {
        Case {
            id: id.into(),
            description: None,
            file: String::new(),
            line: 0,
            context,
            assertions,
            pass_rate: None,
            threshold: None,
            tags: Vec::new(),
        }
    }

    /// Whether any assertion of this case that applies to `version` is a judge.
    pub fn is_judged(&self, version: &str) -> bool {
        self.assertions
            .iter()
            .any(|assertion| assertion.applies_to(version) && assertion.is_judge())
    }
}
