//! Deterministic, GrowthBook-compatible bucketing and targeting conditions:
//! FNV-1a hashing, bucket ranges, namespaces, version ordering and condition
//! evaluation, all following GrowthBook SDK spec 0.5.4 (JS reference quirks
//! included) so a subject gets the same variation and targeting verdict here as
//! in any other GrowthBook SDK.

// Parts of this API serve only the GrowthBook conformance suite (`tests/`), which reaches it
// through the `test-hooks` feature.
#![cfg_attr(not(feature = "test-hooks"), allow(dead_code, unused_imports))]

mod buckets;
mod condition;
mod hash;
mod js_regex;
mod version;

pub use buckets::{
    Namespace, bucket_ranges, choose_variation, equal_weights, in_namespace, in_range,
};
pub use condition::{Condition, ConditionProblem};
pub use hash::{fnv1a_32, hash};
pub use version::{compare_versions, padded_version_string};
