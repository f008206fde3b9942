//! The engine: the object an application holds for its lifetime. It serves resolves from the
//! current snapshot and swaps in a new one on reload; a failed reload keeps the old snapshot
//! serving and reports every problem.

use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::resolve::{Context, Resolution, ResolveError};
use crate::snapshot::{EngineOptions, Fingerprint, Snapshot, Summary};

/// Loads configs and prompts once and resolves features for subjects, from any thread.
#[derive(Debug)]
pub struct Engine {
    options: EngineOptions,
    current: RwLock<Arc<Snapshot>>,
    /// The files as last seen by a reload attempt; also serialises reloads so two concurrent
    /// ones cannot swap out of order.
    last_seen: Mutex<Fingerprint>,
}

impl Engine {
    /// Loads and validates the configuration; fails listing every problem.
    pub fn open(options: EngineOptions) -> crate::Result<Engine> {
        // Scanned before reading, so a file changed during the load still counts as changed.
        let last_seen = Mutex::new(Fingerprint::scan(&options));
        let snapshot = Snapshot::load(&options)?;
        Ok(Engine {
            options,
            current: RwLock::new(Arc::new(snapshot)),
            last_seen,
        })
    }

    /// Validates a configuration without keeping it.
    pub fn validate(options: &EngineOptions) -> crate::Result<Summary> {
        Ok(Snapshot::load(options)?.summary())
    }

    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// The snapshot currently served; holding it keeps it alive across reloads.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        // The lock is held only to clone the pointer, never across a load.
        Arc::clone(&self.current.read())
    }

    /// Resolves `feature` for the subject in `context` and renders its messages.
    pub fn resolve(&self, feature: &str, context: &Context) -> crate::Result<Resolution> {
        let snapshot = self.snapshot();
        let Some(compiled) = snapshot.features.get(feature) else {
            return Err(ResolveError::UnknownFeature {
                feature: feature.to_string(),
                known: snapshot
                    .feature_names()
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
            }
            .into());
        };
        compiled.resolve(context, &snapshot.revision)
    }

    /// Re-reads and validates everything, then swaps atomically. On error the previous snapshot
    /// keeps serving and the error lists every problem.
    pub fn reload(&self) -> crate::Result<Summary> {
        let mut last_seen = self.last_seen.lock();
        self.reload_locked(&mut last_seen)
    }

    /// Reloads only when a file's name, size or modification time changed since the last
    /// reload attempt; returns whether it swapped. A broken change is reported once, and the
    /// previous snapshot keeps serving until the files change again.
    pub fn reload_if_changed(&self) -> crate::Result<bool> {
        let mut last_seen = self.last_seen.lock();
        if Fingerprint::scan(&self.options) == *last_seen {
            return Ok(false);
        }
        self.reload_locked(&mut last_seen).map(|_| true)
    }

    fn reload_locked(&self, last_seen: &mut Fingerprint) -> crate::Result<Summary> {
        *last_seen = Fingerprint::scan(&self.options);
        let snapshot = Snapshot::load(&self.options)?;
        let summary = snapshot.summary();
        *self.current.write() = Arc::new(snapshot);
        Ok(summary)
    }
}
