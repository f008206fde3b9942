//! The portable form of a schema: the declared schema without the array bounds Anthropic's
//! native structured output refuses, for the providers that cannot take them.

use serde_json::Value;

/// `schema` without the array bounds Anthropic's constrained decoding refuses (`minItems` above
/// 1, becoming 1; `maxItems`): what a provider that cannot enforce them is sent. Answers are
/// still validated against `schema` itself. Anything outside the subset is copied unchanged.
pub fn portable_schema(schema: &Value) -> Value {
    let mut copy = schema.clone();
    loosen(&mut copy);
    copy
}

fn loosen(node: &mut Value) {
    let Value::Object(map) = node else {
        return;
    };
    if map
        .get("minItems")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        map.insert("minItems".into(), Value::from(1));
    }
    map.shift_remove("maxItems");
    for key in ["items", "additionalProperties"] {
        if let Some(child) = map.get_mut(key) {
            loosen(child);
        }
    }
    for key in ["properties", "$defs"] {
        if let Some(Value::Object(children)) = map.get_mut(key) {
            children.values_mut().for_each(loosen);
        }
    }
    if let Some(Value::Array(branches)) = map.get_mut("anyOf") {
        branches.iter_mut().for_each(loosen);
    }
}
