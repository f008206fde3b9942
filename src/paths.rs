//! Where the configuration lives. Loading ([`Snapshot::load`](crate::Snapshot::load)), the
//! reload check and the edit commands need these two directories and nothing else of the
//! engine's options, so they take a [`Paths`], and [`EngineOptions`](crate::EngineOptions)
//! holds one.

use std::path::PathBuf;

/// The two directories a configuration is read from.
///
/// `#[non_exhaustive]`: build one with [`Paths::new`] (or [`Paths::default`]); the fields may be
/// read and changed, and later versions may add more.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Paths {
    /// The directory holding `providers.json` and `features/*.json`.
    pub config_dir: PathBuf,
    /// The directory holding the template folders, `<feature>/<version>/<file>`.
    pub prompts_dir: PathBuf,
}

impl Paths {
    /// Paths reading `config_dir` and `prompts_dir` (relative paths are taken from the current
    /// directory when read, not when built).
    pub fn new(config_dir: impl Into<PathBuf>, prompts_dir: impl Into<PathBuf>) -> Paths {
        Paths {
            config_dir: config_dir.into(),
            prompts_dir: prompts_dir.into(),
        }
    }
}

impl Default for Paths {
    /// `./config` and `./prompts`.
    fn default() -> Self {
        Paths::new("config", "prompts")
    }
}
