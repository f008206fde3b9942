//! Keeps every file a version names (its templates, its output schema file) inside the prompts
//! directory: no absolute paths, no `..`, and no symlink that resolves outside of it.

use std::path::{Component, Path, PathBuf};

/// The path of `template` for one version, or why it is refused, with the prompts directory
/// already canonicalized (`root`, or why it could not be), so loading thousands of templates
/// resolves it once.
pub(crate) fn safe_template_path_under(
    prompts_dir: &Path,
    root: &Result<PathBuf, String>,
    feature: &str,
    version: &str,
    template: &str,
) -> Result<PathBuf, String> {
    safe_version_file_under(prompts_dir, root, feature, version, template, "template")
}

/// The path of `file` in one version's folder under the same rules as a template's, or why it
/// is refused; `what` names the file in messages (`template`, `output schema`).
pub(crate) fn safe_version_file_under(
    prompts_dir: &Path,
    root: &Result<PathBuf, String>,
    feature: &str,
    version: &str,
    file: &str,
    what: &str,
) -> Result<PathBuf, String> {
    let relative = Path::new(file);
    for component in relative.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("{what} \"{file}\" may not contain \"..\""));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{what} \"{file}\" must be relative to its version folder"
                ));
            }
        }
    }
    if file.is_empty() {
        return Err(format!("{what} file name is empty"));
    }
    let path = prompts_dir.join(feature).join(version).join(relative);
    let resolved = path
        .canonicalize()
        .map_err(|error| format!("{what} file {} cannot be opened: {error}", path.display()))?;
    let root = root.as_ref().map_err(Clone::clone)?;
    if !resolved.starts_with(root) {
        return Err(format!(
            "{what} file {} resolves to {}, outside the prompts directory",
            path.display(),
            resolved.display()
        ));
    }
    if !resolved.is_file() {
        return Err(format!("{what} {} is not a regular file", path.display()));
    }
    Ok(path)
}

/// [`safe_version_file_under`] with the prompts directory resolved here (for the release
/// command, which reads one version).
pub fn safe_version_file(
    prompts_dir: &Path,
    feature: &str,
    version: &str,
    file: &str,
    what: &str,
) -> Result<PathBuf, String> {
    let root = prompts_dir.canonicalize().map_err(|error| {
        format!(
            "prompts directory {} cannot be opened: {error}",
            prompts_dir.display()
        )
    });
    safe_version_file_under(prompts_dir, &root, feature, version, file, what)
}

/// The canonical folder of one version when it lies inside the canonical prompts directory
/// `root`: resolved once per version, so [`plain_template_path`] needs one `lstat` per template
/// instead of resolving every component of every template path.
pub(crate) fn version_root(
    prompts_dir: &Path,
    root: &Result<PathBuf, String>,
    feature: &str,
    version: &str,
) -> Option<PathBuf> {
    let root = root.as_ref().ok()?;
    let resolved = prompts_dir.join(feature).join(version).canonicalize().ok()?;
    resolved.starts_with(root).then_some(resolved)
}

/// The path [`safe_template_path_under`] would return, when `template` is one plain file name
/// and names a regular file (not a symlink) in a version folder known to resolve inside the
/// prompts directory (`version_root`, from [`version_root`]): such a file resolves inside it
/// too. `None` for anything else (subfolders, symlinks, missing files), which then takes the
/// full check and its error messages.
pub(crate) fn plain_template_path(
    prompts_dir: &Path,
    version_root: Option<&Path>,
    feature: &str,
    version: &str,
    template: &str,
) -> Option<PathBuf> {
    version_root?;
    let mut components = Path::new(template).components();
    if !matches!(
        (components.next(), components.next()),
        (Some(Component::Normal(_)), None)
    ) {
        return None;
    }
    let path = prompts_dir.join(feature).join(version).join(template);
    let metadata = std::fs::symlink_metadata(&path).ok()?;
    metadata.file_type().is_file().then_some(path)
}
