//! Cache keys: which input identifies an answer, normalised so that near-identical inputs
//! share an entry, and hashed with SHA-256 over feature, version, input, model chain and
//! partition.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{CacheSettings, ModelSpec, NormalizeRules};
use crate::prompt::Message;

/// What a key is built from, serialised as JSON (unambiguous: every string is quoted and
/// escaped) and hashed. Field order is fixed by the struct.
#[derive(Serialize)]
struct KeyMaterial<'a> {
    /// Bumped when the key's shape changes, so old entries are never read as new ones.
    format: u32,
    feature: &'a str,
    version: &'a str,
    input: KeyInput<'a>,
    chain: Vec<&'a ModelSpec>,
    partition: &'a [(String, Value)],
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum KeyInput<'a> {
    /// The rendered messages, when no variable is singled out and nothing is normalised.
    Messages(&'a [Message]),
    /// The key variables after normalisation, sorted by name.
    Variables(BTreeMap<&'a str, Value>),
}

/// The inputs of one key, borrowed from the resolution and the context.
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    /// The feature.
    pub feature: &'a str,
    /// The prompt version.
    pub version: &'a str,
    /// The rendered messages.
    pub messages: &'a [Message],
    /// The variables passed (a JSON object; anything else counts as none).
    pub variables: &'a Value,
    /// The primary model.
    pub model: &'a ModelSpec,
    /// The fallbacks.
    pub fallbacks: &'a [ModelSpec],
    /// The partition: each `partition_by` attribute with its value (`null` when absent).
    pub partition: &'a [(String, Value)],
}

/// The SHA-256 key of `parts` under `settings`, as 64 lower-case hex digits.
pub fn cache_key(settings: &CacheSettings, parts: &KeyParts<'_>) -> String {
    let keyed_on_variables = settings.key_variables.is_some() || settings.normalize.is_some();
    let input = if keyed_on_variables {
        KeyInput::Variables(key_variables(settings, parts.variables))
    } else {
        KeyInput::Messages(parts.messages)
    };
    let material = KeyMaterial {
        format: 1,
        feature: parts.feature,
        version: parts.version,
        input,
        chain: std::iter::once(parts.model).chain(parts.fallbacks).collect(),
        partition: parts.partition,
    };
    // Serialised into one buffer and hashed in one pass: feeding the hasher serde's many small
    // writes cost more than the copy. Serialising plain data cannot fail; were it to, the key
    // would be the hash of a prefix of the material, never another entry's by construction.
    let mut bytes = Vec::with_capacity(512);
    let _ = serde_json::to_writer(&mut bytes, &material);
    hex(&Sha256::digest(&bytes))
}

/// The variables that form the key, normalised: `key_variables` (absent ones as `null`) or
/// every variable passed.
fn key_variables<'a>(settings: &'a CacheSettings, variables: &'a Value) -> BTreeMap<&'a str, Value> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    let passed = variables.as_object().unwrap_or(&EMPTY);
    let normalize = |name: &str, value: &Value| match &settings.normalize {
        Some(normalize) => normalize_value(&normalize.rules_for(name), value),
        None => value.clone(),
    };
    match &settings.key_variables {
        Some(names) => names
            .iter()
            .map(|name| {
                let value = passed.get(name).unwrap_or(&Value::Null);
                (name.as_str(), normalize(name, value))
            })
            .collect(),
        None => passed
            .iter()
            .map(|(name, value)| (name.as_str(), normalize(name, value)))
            .collect(),
    }
}

/// `value` with `rules` applied to every string and number in it (arrays and objects too).
pub fn normalize_value(rules: &NormalizeRules, value: &Value) -> Value {
    match value {
        Value::String(text) => Value::String(normalize_text(rules, text)),
        Value::Number(number) => match (rules.round_to, number.as_f64()) {
            (Some(step), Some(x)) if step > 0.0 => round_number(x, step),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| normalize_value(rules, item))
                .collect(),
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, item)| (name.clone(), normalize_value(rules, item)))
                .collect(),
        ),
        Value::Null | Value::Bool(_) => value.clone(),
    }
}

/// Trim, collapse and fold one string, in that order.
pub fn normalize_text(rules: &NormalizeRules, text: &str) -> String {
    let mut text = if rules.trim == Some(true) {
        text.trim().to_string()
    } else {
        text.to_string()
    };
    if rules.collapse_whitespace == Some(true) {
        let mut collapsed = String::with_capacity(text.len());
        let mut in_space = false;
        for character in text.chars() {
            if character.is_whitespace() {
                if !in_space {
                    collapsed.push(' ');
                }
                in_space = true;
            } else {
                collapsed.push(character);
                in_space = false;
            }
        }
        text = collapsed;
    }
    if rules.case_fold == Some(true) {
        text = text.to_lowercase();
    }
    text
}

/// `x` rounded to the nearest multiple of `step`, as an integer when it is one (so 40 and 40.0
/// give one key).
fn round_number(x: f64, step: f64) -> Value {
    let rounded = (x / step).round() * step;
    if rounded.fract() == 0.0 && rounded.abs() < 9.0e15 {
        Value::from(rounded as i64)
    } else {
        serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
    }
}

/// The partition of a context: each allow-listed attribute with its value.
pub fn partition_of(settings: &CacheSettings, attributes: &Map<String, Value>) -> Vec<(String, Value)> {
    settings
        .partition_by
        .iter()
        .map(|name| (name.clone(), attributes.get(name).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// The partition as people read it: `sector=tech,degree=msc` (strings bare, other values as
/// JSON, an absent attribute as `-`); `None` when the feature does not partition.
pub fn partition_label(partition: &[(String, Value)]) -> Option<String> {
    if partition.is_empty() {
        return None;
    }
    let parts: Vec<String> = partition
        .iter()
        .map(|(name, value)| match value {
            Value::String(text) => format!("{name}={text}"),
            Value::Null => format!("{name}=-"),
            other => format!("{name}={other}"),
        })
        .collect();
    Some(parts.join(","))
}

/// Lower-case hex, by table (formatting each byte with `write!` showed in profiles of a hit).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NormalizeSettings;
    use proptest::prelude::*;

    fn folding() -> NormalizeRules {
        NormalizeRules {
            trim: Some(true),
            case_fold: Some(true),
            collapse_whitespace: Some(true),
            round_to: None,
        }
    }

    #[test]
    fn trim_fold_and_collapse_make_data_analyst_variants_equal() {
        let rules = folding();
        assert_eq!(normalize_text(&rules, "Data Analyst "), "data analyst");
        assert_eq!(normalize_text(&rules, "  data \t  ANALYST"), "data analyst");
    }

    #[test]
    fn numbers_round_to_the_nearest_step_and_integers_compare_equal() {
        let rules = NormalizeRules {
            round_to: Some(5.0),
            ..NormalizeRules::default()
        };
        assert_eq!(normalize_value(&rules, &Value::from(42)), Value::from(40));
        assert_eq!(normalize_value(&rules, &Value::from(43.0)), Value::from(45));
        assert_eq!(normalize_value(&rules, &Value::from(40.0)), Value::from(40));
    }

    #[test]
    fn a_per_variable_rule_overrides_the_rule_for_all() {
        let settings = NormalizeSettings {
            all: folding(),
            variables: [(
                "name".to_string(),
                NormalizeRules {
                    case_fold: Some(false),
                    ..NormalizeRules::default()
                },
            )]
            .into(),
        };
        let rules = settings.rules_for("name");
        assert_eq!(normalize_text(&rules, " Ada  Lovelace "), "Ada Lovelace");
        assert_eq!(normalize_text(&settings.rules_for("role"), " Ada "), "ada");
    }

    fn settings(partition_by: &[&str]) -> CacheSettings {
        CacheSettings {
            enabled: true,
            ttl_seconds: 60,
            key_variables: Some(vec!["role".into()]),
            normalize: Some(NormalizeSettings {
                all: folding(),
                variables: BTreeMap::new(),
            }),
            partition_by: partition_by.iter().map(|name| name.to_string()).collect(),
            allow_temperature_above_zero: false,
        }
    }

    fn key_for(settings: &CacheSettings, role: &str, sector: &str, temperature: f64) -> String {
        let model = ModelSpec {
            provider: "openai".into(),
            name: "gpt-4o-mini".into(),
            parameters: crate::config::ModelParameters {
                temperature: Some(temperature),
                ..Default::default()
            },
        };
        let attributes: Map<String, Value> =
            [("sector".to_string(), Value::from(sector))].into_iter().collect();
        let partition = partition_of(settings, &attributes);
        let variables = serde_json::json!({"role": role, "other": "ignored"});
        cache_key(
            settings,
            &KeyParts {
                feature: "career",
                version: "1.0.0",
                messages: &[],
                variables: &variables,
                model: &model,
                fallbacks: &[],
                partition: &partition,
            },
        )
    }

    #[test]
    fn the_key_covers_the_partition_and_the_model_parameters_but_not_other_variables() {
        let partitioned = settings(&["sector"]);
        let base = key_for(&partitioned, "Data Analyst ", "tech", 0.0);
        assert_eq!(base.len(), 64);
        assert_eq!(base, key_for(&partitioned, "data analyst", "tech", 0.0));
        assert_ne!(base, key_for(&partitioned, "data analyst", "health", 0.0));
        assert_ne!(base, key_for(&partitioned, "data analyst", "tech", 0.5));
        let shared = settings(&[]);
        assert_eq!(
            key_for(&shared, "analyst", "tech", 0.0),
            key_for(&shared, "analyst", "health", 0.0)
        );
    }

    proptest! {
        #[test]
        fn roles_equal_after_normalisation_share_a_key_and_others_do_not(
            left in "[ a-zA-Z]{0,16}",
            right in "[ a-zA-Z]{0,16}",
        ) {
            let settings = settings(&["sector"]);
            let rules = folding();
            let same = normalize_text(&rules, &left) == normalize_text(&rules, &right);
            let keys_equal = key_for(&settings, &left, "tech", 0.0) == key_for(&settings, &right, "tech", 0.0);
            prop_assert_eq!(same, keys_equal);
        }

        #[test]
        fn normalising_twice_changes_nothing(text in "\\PC{0,40}") {
            let rules = folding();
            let once = normalize_text(&rules, &text);
            prop_assert_eq!(normalize_text(&rules, &once), once.clone());
        }

        #[test]
        fn padding_and_case_never_change_the_normalised_text(
            word in "[a-zA-Z]{1,12}( [a-zA-Z]{1,12}){0,3}",
            left in "[ \t\n]{0,3}",
            right in "[ \t\n]{0,3}",
        ) {
            let rules = folding();
            let padded = format!("{left}{}{right}", word.to_uppercase().replace(' ', "  "));
            prop_assert_eq!(normalize_text(&rules, &padded), word.to_lowercase());
        }

        #[test]
        fn rounded_numbers_are_multiples_of_the_step(x in -1.0e6f64..1.0e6, step in 1u32..1000) {
            let rules = NormalizeRules { round_to: Some(f64::from(step)), ..NormalizeRules::default() };
            let rounded = normalize_value(&rules, &Value::from(x));
            let value = rounded.as_f64().unwrap_or(f64::NAN);
            prop_assert!((value / f64::from(step)).fract() == 0.0, "{value} for {x} step {step}");
            prop_assert!((value - x).abs() <= f64::from(step) / 2.0 + 1e-6);
        }
    }
}
