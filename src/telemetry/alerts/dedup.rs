//! Once per rule, scope and period. PLACEHOLDER with the agreed signature: helper H3 replaces
//! it (memory, and a claim on Redis shared by the fleet).

// Placeholder until its helper lands: nothing calls it yet.
#![allow(dead_code)]

use crate::state::SharedState;

/// Where alert claims are kept: this process, or the fleet's Redis.
#[derive(Debug, Clone)]
pub(crate) struct Dedup {
    shared: Option<SharedState>,
}

impl Dedup {
    /// Claims in memory when `shared` is `None`, else on the fleet's Redis (falling back to
    /// memory while it is unavailable).
    pub fn new(shared: Option<SharedState>) -> Dedup {
        Dedup { shared }
    }
}
