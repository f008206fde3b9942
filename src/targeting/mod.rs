//! Deterministic, GrowthBook-compatible bucketing and targeting conditions:
//! FNV-1a hashing, bucket ranges, namespaces, version ordering and condition
//! evaluation, all following GrowthBook SDK spec 0.5.4 (JS reference quirks
//! included) so a subject gets the same variation and targeting verdict here as
//! in any other GrowthBook SDK.

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
