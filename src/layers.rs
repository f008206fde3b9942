//! The layering rule, checked: the core's modules form one stack (README's *Architecture*), and
//! each module names only modules below it, so arrows point one way and no cycle can come back
//! unnoticed. The test reads every `crate::` path in the library's sources (a `use` line, a
//! `crate::{...}` group or a path inline), maps root re-exports (`crate::Context`) to the
//! module that defines them (and a `super::` chain that reaches the root to `crate::`), and
//! fails naming the file, line and arrow at fault. Test modules
//! (`tests.rs`, an inline `mod tests`) may reach anywhere and are not read; neither is the CLI,
//! which uses the library from outside like any other caller.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The stack, bottom first. A module may use modules of lower rows and its own submodules,
/// never a module of its own row or one above. `error::kind` (the shared `ErrorKind` list) and
/// `paths` are contracts every layer may name; the crate's `Error`, which wraps every layer's
/// error, sits above them all.
const LAYERS: &[&[&str]] = &[
    &["error::kind", "paths"],
    &["targeting"],
    &["output"],
    &["config"],
    &["prompt"],
    &["resolve"],
    &["state"],
    &["client"],
    &["cache"],
    &["telemetry"],
    &["options", "snapshot"],
    &["error"],
    &["engine", "edit"],
    &["eval"],
    &["c_api"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

/// The layer a path below `crate::` falls in: its first segment, except `error::kind`.
fn module_of(segments: &[&str]) -> String {
    match segments {
        ["error", "kind", ..] => "error::kind".into(),
        [first, ..] => (*first).to_string(),
        [] => String::new(),
    }
}

/// The layer a source file belongs to, from its path under `src/`.
fn module_of_file(relative: &Path) -> String {
    let parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    module_of(&parts)
}

/// Every path named after `crate::` in `code`, split into segments; a `crate::{a::b, c}` group
/// gives one path per item.
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(found) = rest.find("crate::") {
        let preceded = rest[..found].chars().next_back();
        let after = &rest[found + "crate::".len()..];
        rest = after;
        // `$crate::` is a macro's own crate; `foo_crate::` is another name.
        if preceded.is_some_and(|character| character == '$' || is_ident(character)) {
            continue;
        }
        collect_paths(after, Vec::new(), &mut paths);
    }
    paths
}

fn is_ident(character: char) -> bool {
    character.is_alphanumeric() || character == '_'
}

/// Reads one path (or group) at the start of `text`, prefixed by `prefix`.
fn collect_paths(text: &str, prefix: Vec<String>, paths: &mut Vec<Vec<String>>) {
    let text = text.trim_start();
    if let Some(group) = text.strip_prefix('{') {
        let mut depth = 0usize;
        let mut start = 0;
        for (index, character) in group.char_indices() {
            match character {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    collect_paths(&group[start..index], prefix.clone(), paths);
                    return;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    collect_paths(&group[start..index], prefix.clone(), paths);
                    start = index + 1;
                }
                _ => {}
            }
        }
        return;
    }
    let mut segments = prefix;
    let mut rest = text;
    loop {
        let end = rest
            .find(|character| !is_ident(character))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        segments.push(rest[..end].to_string());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(next) if next.starts_with('{') => return collect_paths(next, segments, paths),
            Some(next) => rest = next,
            None => break,
        }
    }
    if !segments.is_empty() {
        paths.push(segments);
    }
}

/// The code of a file without comments and without its inline test module.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut previous_cfg_test = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if previous_cfg_test && trimmed.starts_with("mod tests") {
            break;
        }
        if !trimmed.is_empty() {
            previous_cfg_test = trimmed == "#[cfg(test)]";
        }
        if trimmed.starts_with("//") {
            continue;
        }
        let code = line.split(" // ").next().unwrap_or_default();
        lines.push((index + 1, code.to_string()));
    }
    lines
}

/// `pub use` lines of `lib.rs`: which module each root name comes from.
fn root_reexports(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in lib.lines() {
        let Some(path) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        for segments in crate_paths(&format!("crate::{}", path.trim_end_matches(';'))) {
            let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
            if let Some(name) = segments.last() {
                names.insert((*name).to_string(), module_of(&segments));
            }
        }
    }
    names
}

fn source_files(directory: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// `file:line: from -> to` for every arrow that points down-up or sideways.
fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let reexports = root_reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    source_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_string_lossy();
        let skipped = ["lib.rs", "main.rs", "layers.rs", "cli"].contains(&first.as_ref())
            || relative.file_name().is_some_and(|name| name == "tests.rs");
        if skipped {
            continue;
        }
        let from = module_of_file(relative);
        let Some(from_rank) = rank(&from) else {
            found.push(format!(
                "{}: module `{from}` has no place in LAYERS (src/layers.rs): add it to the \
                 stack and to README's Architecture",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        // As many `super::` as the file is deep reach the crate root: the same as `crate::`.
        let depth = relative.iter().count() - usize::from(relative.ends_with("mod.rs"));
        let to_root = "super::".repeat(depth);
        for (line, code) in code_lines(&text) {
            let code = code.replace(&to_root, "crate::");
            for segments in crate_paths(&code) {
                let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
                let to = match reexports.get(segments[0]) {
                    Some(module) if !is_module(segments[0]) => module.clone(),
                    _ => module_of(&segments),
                };
                let allowed = to == from
                    || (to.starts_with(&format!("{from}::")))
                    || rank(&to).is_some_and(|to_rank| to_rank < from_rank);
                if !allowed {
                    found.push(format!(
                        "{}:{line}: {from} -> {to} (crate::{})",
                        relative.display(),
                        segments.join("::")
                    ));
                }
            }
        }
    }
    found
}

/// Whether `name` is a module of the crate (lower case) rather than a re-exported item.
fn is_module(name: &str) -> bool {
    name.chars().next().is_some_and(char::is_lowercase) && rank(name).is_some()
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let found = violations();
    assert!(
        found.is_empty(),
        "arrows must point down the stack in src/layers.rs:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn a_group_import_names_each_of_its_modules() {
    let paths = crate_paths("use crate::{config::Problem, prompt::{Message, Role}, Engine};");
    let firsts: Vec<&str> = paths.iter().map(|path| path[0].as_str()).collect();
    assert_eq!(firsts, ["config", "prompt", "prompt", "Engine"]);
}

#[test]
fn a_macro_crate_path_and_another_crate_are_not_arrows() {
    assert!(crate_paths("$crate::x!(); other_crate::y();").is_empty());
}

#[test]
fn error_kind_is_a_layer_of_its_own() {
    assert_eq!(module_of(&["error", "kind", "ErrorKind"]), "error::kind");
    assert_eq!(module_of(&["error", "Error"]), "error");
}
