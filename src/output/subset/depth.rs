//! How deep objects nest in a schema that passed the other checks, following `$ref`s.

use std::collections::BTreeMap;

use serde_json::Value;

/// Levels of object nesting, following `$ref`s (each definition measured once).
pub(super) struct Depth<'a> {
    defs: &'a BTreeMap<String, &'a Value>,
    known: BTreeMap<&'a str, usize>,
}

impl<'a> Depth<'a> {
    pub(super) fn new(defs: &'a BTreeMap<String, &'a Value>) -> Depth<'a> {
        Depth {
            defs,
            known: BTreeMap::new(),
        }
    }

    /// Only called on a schema that passed the checks, so references are acyclic.
    pub(super) fn of(&mut self, node: &'a Value) -> usize {
        let Value::Object(map) = node else {
            return 0;
        };
        if let Some(name) = map
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix("#/$defs/"))
        {
            let name = name.replace("~1", "/").replace("~0", "~");
            let Some((key, def)) = self.defs.get_key_value(&name) else {
                return 0;
            };
            if let Some(depth) = self.known.get(key.as_str()) {
                return *depth;
            }
            let depth = self.of(def);
            self.known.insert(key.as_str(), depth);
            return depth;
        }
        let mut deepest = 0;
        if let Some(Value::Object(properties)) = map.get("properties") {
            for schema in properties.values() {
                deepest = deepest.max(self.of(schema));
            }
        }
        if let Some(items) = map.get("items") {
            deepest = deepest.max(self.of(items));
        }
        if let Some(Value::Array(branches)) = map.get("anyOf") {
            for branch in branches {
                deepest = deepest.max(self.of(branch));
            }
        }
        let is_object = match map.get("type") {
            Some(Value::String(name)) => name == "object",
            Some(Value::Array(names)) => names.iter().any(|name| name == "object"),
            _ => false,
        };
        deepest + usize::from(is_object)
    }
}
