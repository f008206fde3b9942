//! The response cache's settings in a feature document (`cache`, at the feature's top level or
//! in one version), and the checks the schema cannot make: key variables a version does not
//! declare. A version's `cache` replaces the feature's as a whole (no field-by-field merge), so
//! what a version caches is read in one place.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::FeatureConfig;
use super::{Problem, pointer_token};

/// `cache` in a feature document: opt-in response caching of `complete()`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// False turns caching off (a version may turn off a feature's cache this way). Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How long an answer stays served from the cache, in seconds (at least 1); required unless
    /// `enabled` is false (then 0).
    #[serde(default)]
    pub ttl_seconds: u64,
    /// The variables that form the key; `None` (absent) means all of them. When set, or when
    /// `normalize` is given, the key is built from the (normalised) variables; otherwise from
    /// the rendered messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_variables: Option<Vec<String>>,
    /// How key variables are normalised before hashing, so near-identical inputs share an entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalize: Option<NormalizeSettings>,
    /// Attributes whose values split the cache (`sector`, `degree`): subjects with different
    /// values never share an entry. Only these attributes reach the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_by: Vec<String>,
    /// Cache answers of a chain with a temperature above 0 (or unset: the provider's default,
    /// usually 1). Default false: such answers vary by design, and a cache would freeze one.
    #[serde(default)]
    pub allow_temperature_above_zero: bool,
}

fn default_true() -> bool {
    true
}

/// `cache.normalize`: rules for every key variable, with per-variable overrides.
// No `deny_unknown_fields`: serde does not support it beside `flatten`; the schema refuses
// unknown fields before this type is read.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct NormalizeSettings {
    /// The rules applied to every key variable.
    #[serde(flatten)]
    pub all: NormalizeRules,
    /// Rules for one variable; a field given here overrides the same field of `all`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, NormalizeRules>,
}

impl NormalizeSettings {
    /// The rules in force for `variable`.
    pub fn rules_for(&self, variable: &str) -> NormalizeRules {
        match self.variables.get(variable) {
            Some(own) => NormalizeRules {
                trim: own.trim.or(self.all.trim),
                case_fold: own.case_fold.or(self.all.case_fold),
                collapse_whitespace: own.collapse_whitespace.or(self.all.collapse_whitespace),
                round_to: own.round_to.or(self.all.round_to),
            },
            None => self.all.clone(),
        }
    }
}

/// Normalisation of one value (strings and numbers, also inside arrays and objects). Each rule is
/// deterministic: the same input always gives the same key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizeRules {
    /// Strip leading and trailing whitespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trim: Option<bool>,
    /// Lower-case (Unicode `to_lowercase`), so `Data Analyst` and `data analyst` match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_fold: Option<bool>,
    /// Replace every run of whitespace by one space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collapse_whitespace: Option<bool>,
    /// Round numbers to the nearest multiple of this step (greater than 0), half away from zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_to: Option<f64>,
}

impl FeatureConfig {
    /// The cache settings in force for `version`: the version's own `cache`, else the
    /// feature's; `None` when neither is given or the one in force is disabled.
    pub fn cache_for(&self, version: &str) -> Option<&CacheSettings> {
        let own = self
            .versions
            .get(version)
            .and_then(|spec| spec.cache.as_ref());
        own.or(self.cache.as_ref())
            .filter(|settings| settings.enabled)
    }
}

/// Problems of the cache settings in `feature`: key variables and normalised variables that
/// no version the settings apply to declares (a typo: the variable would never reach the key).
pub(crate) fn check_cache(file: &str, feature: &FeatureConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Each version's own settings, then the feature's with the versions that inherit them.
    let mut scopes: Vec<(&CacheSettings, String, Vec<&str>)> = Vec::new();
    let mut inheriting = Vec::new();
    for (version, spec) in &feature.versions {
        match &spec.cache {
            Some(own) => scopes.push((
                own,
                format!("/versions/{}/cache", pointer_token(version)),
                vec![version.as_str()],
            )),
            None => inheriting.push(version.as_str()),
        }
    }
    if let Some(shared) = &feature.cache
        && !inheriting.is_empty()
    {
        scopes.push((shared, "/cache".to_string(), inheriting));
    }
    for (settings, base, versions) in scopes {
        if settings.enabled {
            problems.extend(check_temperature(file, feature, settings, &base, &versions));
        }
        // An empty list would key every input of a version alike: one answer for all of them.
        if settings.key_variables.as_ref().is_some_and(Vec::is_empty) {
            problems.push(Problem::new(
                file,
                format!("{base}/key_variables"),
                "key_variables is empty: every input would share one cached answer; list the \
                 variables that make answers differ, or leave key_variables out to key on all \
                 of them",
            ));
        }
        let declared_somewhere = |name: &str| {
            versions.iter().any(|version| {
                feature
                    .versions
                    .get(*version)
                    .and_then(|spec| spec.variables.get("properties"))
                    .and_then(|properties| properties.as_object())
                    .is_some_and(|properties| properties.contains_key(name))
            })
        };
        let versions = versions.join(", ");
        for (index, name) in settings.key_variables.iter().flatten().enumerate() {
            if !declared_somewhere(name) {
                problems.push(Problem::new(
                    file,
                    format!("{base}/key_variables/{index}"),
                    format!("key variable \"{name}\" is not declared by version {versions}"),
                ));
            }
        }
        let normalized = settings.normalize.iter().flat_map(|n| n.variables.keys());
        for name in normalized {
            if !declared_somewhere(name) {
                problems.push(Problem::new(
                    file,
                    format!("{base}/normalize/variables/{}", pointer_token(name)),
                    format!("variable \"{name}\" is not declared by version {versions}"),
                ));
            }
        }
    }
    problems
}

/// A cache that can never store: the never-cached rule (`crate::cache::temperature_allows`)
/// keeps out every answer of a chain with a model whose temperature is above 0 or unset (the
/// provider's default, usually 1), unless `allow_temperature_above_zero` is set. Checked on each
/// version's own chain (its `model` and `fallbacks`, else the feature's): the one it answers
/// with unless a rule or experiment arm names another.
fn check_temperature(
    file: &str,
    feature: &FeatureConfig,
    settings: &CacheSettings,
    base: &str,
    versions: &[&str],
) -> Option<Problem> {
    if settings.allow_temperature_above_zero {
        return None;
    }
    let mut never = Vec::new();
    let mut culprit = None;
    for version in versions {
        let Some(spec) = feature.versions.get(*version) else {
            continue;
        };
        let (model, fallbacks) = match &spec.model {
            Some(model) => (model, spec.fallbacks.as_deref().unwrap_or_default()),
            None => (&feature.model, feature.fallbacks.as_slice()),
        };
        let hot = std::iter::once(model)
            .chain(fallbacks)
            .find(|model| model.parameters.temperature != Some(0.0));
        if let Some(hot) = hot {
            never.push(*version);
            culprit.get_or_insert(hot);
        }
    }
    let culprit = culprit?;
    let temperature = culprit
        .parameters
        .temperature
        .map_or("unset (the provider's default, usually 1)".to_string(), |t| {
            t.to_string()
        });
    Some(Problem::new(
        file,
        base.to_string(),
        format!(
            "this cache can never store an answer of version {}: model {}/{} has temperature \
             {temperature}, and answers of a chain with a temperature above 0 are never cached; \
             set every temperature of the chain to 0, or set allow_temperature_above_zero: true \
             to cache them anyway",
            never.join(", "),
            culprit.provider,
            culprit.name,
        ),
    ))
}
