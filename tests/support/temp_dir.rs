//! A directory of a test's own under the system temp dir, removed when dropped: the one temp-dir
//! helper behind every fixture here.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh, empty directory, `prompt_config_test_{name}_{pid}_{n}` under the system temp dir:
/// unique to this process and this call, so tests running at once never share one. Removed with
/// everything in it when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates the directory; `name` says what it holds, to find it while a test runs.
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "prompt_config_test_{name}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A directory left by an earlier process with the same pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `events.jsonl` in the directory: the telemetry log of the writer tests.
    pub fn log(&self) -> PathBuf {
        self.0.join("events.jsonl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
