//! The hashes that cover a version's structured-output and tool declarations, so that a released
//! version's `output`, `tools` and `tool_choice` are as immutable as its template files. Each
//! declaration is hashed as canonical JSON under its own key in the version's `sha256` map,
//! beside the file hashes: `output` (the whole `output` object: `name`, `schema` (inline, or the
//! schema file's name, whose bytes are hashed under that file name), `repair`), `tools` (the
//! array) and `tool_choice`. The loader checks them; `prompt-config release` records them.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::VersionSpec;

/// The `sha256` keys of the declarations; no template or schema file may be named so.
pub const DECLARATION_KEYS: [&str; 3] = ["output", "tools", "tool_choice"];

/// SHA-256 (lower-case hex) of the canonical JSON of each declaration `spec` makes, by key
/// (`output`, `tools`, `tool_choice`); a key is absent when the version does not declare it
/// (an empty `tools` array and `"tool_choice": "auto"`, the defaults, count as absent). The
/// typed declaration is hashed, so writing a default out (`"repair": true`) or reordering keys
/// changes nothing.
pub fn declaration_hashes(spec: &VersionSpec) -> BTreeMap<&'static str, String> {
    let mut hashes = BTreeMap::new();
    if let Some(output) = &spec.output {
        hashes.insert("output", hash_of(output));
    }
    if !spec.tools.is_empty() {
        hashes.insert("tools", hash_of(&spec.tools));
    }
    // `auto` is the default: writing it out declares nothing new, as `"repair": true` does not.
    let declared_choice = spec
        .tool_choice
        .as_ref()
        .filter(|choice| **choice != crate::output::ToolChoice::Auto);
    if let Some(tool_choice) = declared_choice {
        hashes.insert("tool_choice", hash_of(tool_choice));
    }
    hashes
}

fn hash_of(declaration: &impl Serialize) -> String {
    // These types serialize to JSON without fail (string keys only); Null would still hash.
    let value = serde_json::to_value(declaration).unwrap_or(Value::Null);
    let digest: [u8; 32] = Sha256::digest(canonical_json(&value).as_bytes()).into();
    digest.iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// `value` as compact JSON with every object's keys sorted by their UTF-8 bytes, whatever order
/// they were written in (serde_json keeps the written order here: `preserve_order`). Strings and
/// numbers are written as serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::{canonical_json, declaration_hashes};
    use crate::config::VersionSpec;

    fn spec(extra: Value) -> VersionSpec {
        let mut document = json!({
            "status": "draft",
            "messages": [{"role": "user", "template": "user.j2"}],
            "variables": {"type": "object"}
        });
        if let (Value::Object(map), Value::Object(extra)) = (&mut document, extra) {
            map.extend(extra);
        }
        serde_json::from_value(document).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = json!({"b": 1, "a": {"d": [true, null], "c": "x"}});
        assert_eq!(canonical_json(&value), r#"{"a":{"c":"x","d":[true,null]},"b":1}"#);
    }

    #[test]
    fn a_version_without_declarations_has_no_declaration_hashes() {
        assert!(declaration_hashes(&spec(json!({}))).is_empty());
        assert!(declaration_hashes(&spec(json!({"tools": []}))).is_empty());
    }

    #[test]
    fn each_declaration_has_its_own_key() {
        let hashes = declaration_hashes(&spec(json!({
            "output": {"name": "answer", "schema": "output.schema.json"},
            "tools": [{"name": "lookup", "parameters": {"type": "object"}}],
            "tool_choice": "required"
        })));
        assert_eq!(hashes.keys().copied().collect::<Vec<_>>(), ["output", "tool_choice", "tools"]);
        assert!(hashes.values().all(|hash| hash.len() == 64));
    }

    #[test]
    fn a_written_out_default_tool_choice_declares_nothing() {
        let tools = json!([{"name": "lookup", "parameters": {"type": "object"}}]);
        let bare = spec(json!({"tools": tools.clone()}));
        let auto = spec(json!({"tools": tools, "tool_choice": "auto"}));
        assert_eq!(declaration_hashes(&bare), declaration_hashes(&auto));
    }

    #[test]
    fn key_order_and_written_defaults_do_not_change_the_hash() {
        let a = spec(json!({"output": {"name": "n", "schema": {"type": "object", "properties": {}}}}));
        let b = spec(json!({"output": {"repair": true, "schema": {"properties": {}, "type": "object"}, "name": "n"}}));
        assert_eq!(declaration_hashes(&a), declaration_hashes(&b));
    }

    #[test]
    fn any_change_of_meaning_changes_the_hash() {
        let base = declaration_hashes(&spec(json!({"output": {"name": "n", "schema": "a.json"}})));
        for changed in [
            json!({"output": {"name": "m", "schema": "a.json"}}),
            json!({"output": {"name": "n", "schema": "b.json"}}),
            json!({"output": {"name": "n", "schema": "a.json", "repair": false}}),
        ] {
            assert_ne!(declaration_hashes(&spec(changed))["output"], base["output"]);
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(("\\PC{0,4}", inner), 0..5)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// The same value with every object's keys in reverse order.
    fn reversed(value: &Value) -> Value {
        match value {
            Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
            Value::Object(map) => Value::Object(
                map.iter().rev().map(|(key, item)| (key.clone(), reversed(item))).collect(),
            ),
            scalar => scalar.clone(),
        }
    }

    proptest! {
        #[test]
        fn canonical_json_is_json_of_the_same_value_whatever_the_key_order(value in json_value()) {
            let text = canonical_json(&value);
            prop_assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value.clone());
            prop_assert_eq!(canonical_json(&reversed(&value)), text);
        }
    }
}
