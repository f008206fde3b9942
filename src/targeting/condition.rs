//! GrowthBook targeting conditions with spec 0.5.4 semantics, including the JS
//! coercions and quirks the reference SDK exhibits, so targeting agrees with it.

use std::cmp::Ordering;
use std::collections::HashMap;

use regex::Regex;

use super::js_regex::compile_js_regex;
use serde_json::{Map, Value};

use super::version::{
    array_index, js_compare, js_str_cmp, js_text, js_to_number, json_text_eq,
    padded_version_string, strict_eq, truthy,
};

/// The operators 0.5.4 knows; anything else evaluates to false.
#[rustfmt::skip]
const KNOWN_OPERATORS: &[&str] = &[
    "$eq", "$ne", "$lt", "$lte", "$gt", "$gte", "$exists", "$in", "$nin", "$not", "$size",
    "$elemMatch", "$all", "$regex", "$type", "$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte",
];
/// Top-level logical keys, in the order 0.5.4 checks them (the first one present wins).
const LOGICAL_KEYS: [&str; 4] = ["$or", "$nor", "$and", "$not"];
const TYPE_NAMES: &[&str] = &["null", "array", "string", "number", "boolean", "object"];
static NULL: Value = Value::Null;

/// A compiled GrowthBook condition, ready to be matched against attributes many times.
#[derive(Debug, Clone)]
pub struct Condition {
    raw: Value,
    /// `None` marks a pattern JS would reject, which then never matches.
    regexes: HashMap<String, Option<Regex>>,
}

/// Something suspicious in a condition, located by a JSON pointer relative to its root.
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionProblem {
    /// RFC 6901 pointer from the condition root, e.g. `/sector/$regex`.
    pub pointer: String,
    /// Human-readable explanation of the problem and its runtime effect.
    pub message: String,
}

/// JS threw an exception; the SDK then treats the whole condition as failed.
struct Thrown;
type Eval = Result<bool, Thrown>;

/// What JS `getPath` starts from: the attributes, or an `$elemMatch` element.
#[derive(Clone, Copy)]
enum Root<'a> {
    Attributes(&'a Map<String, Value>),
    Value(&'a Value),
}

impl Condition {
    /// Compiles once so matching never parses regexes; problems are advisory, as JS evaluates such parts to false.
    pub fn compile(condition: &Value) -> (Condition, Vec<ConditionProblem>) {
        let mut compiler = Compiler::default();
        compiler.walk_condition(condition, &mut String::new());
        let compiled = Condition {
            raw: condition.clone(),
            regexes: compiler.regexes,
        };
        (compiled, compiler.problems)
    }

    /// Whether `attributes` satisfy the condition; a JS exception counts as no match.
    pub fn matches(&self, attributes: &Map<String, Value>) -> bool {
        self.eval_condition(Root::Attributes(attributes), &self.raw)
            .unwrap_or(false)
    }

    /// The condition exactly as it was compiled, e.g. for re-serialization.
    pub fn as_json(&self) -> &Value {
        &self.raw
    }

    fn eval_condition(&self, root: Root<'_>, condition: &Value) -> Eval {
        let map = match condition {
            Value::Object(map) => map,
            // JS iterates an array's entries as if its indices were attribute paths.
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if !self.eval_value(item, lookup(root, &i.to_string()))? {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            // `"$or" in condition` throws a TypeError on primitives.
            _ => return Err(Thrown),
        };
        if map.keys().any(|k| k.starts_with('$')) {
            if let Some(items) = map.get("$or") {
                return self.eval_or(root, items);
            }
            if let Some(items) = map.get("$nor") {
                return self.eval_or(root, items).map(|b| !b);
            }
            if let Some(items) = map.get("$and") {
                return self.eval_and(root, items);
            }
            if let Some(inner) = map.get("$not") {
                return self.eval_condition(root, inner).map(|b| !b);
            }
        }
        for (path, expected) in map {
            if !self.eval_value(expected, lookup(root, path))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn eval_or(&self, root: Root<'_>, items: &Value) -> Eval {
        match logical_items(items)? {
            [] => Ok(true),
            items => {
                for item in items {
                    if self.eval_condition(root, item)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    fn eval_and(&self, root: Root<'_>, items: &Value) -> Eval {
        for item in logical_items(items)? {
            if !self.eval_condition(root, item)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// JS `evalConditionValue`: how `expected` is compared depends on its JSON type.
    fn eval_value(&self, expected: &Value, actual: &Value) -> Eval {
        Ok(match expected {
            Value::String(s) => js_text(actual).as_str() == s,
            Value::Number(n) => js_to_number(actual) == n.as_f64().unwrap_or(f64::NAN),
            Value::Bool(b) => truthy(actual) == *b,
            Value::Null => actual.is_null(),
            Value::Object(ops) if is_operator_object(ops) => {
                for (op, operand) in ops {
                    if !self.eval_operator(op, actual, operand)? {
                        return Ok(false);
                    }
                }
                true
            }
            Value::Array(_) | Value::Object(_) => json_text_eq(actual, expected),
        })
    }

    fn eval_operator(&self, op: &str, actual: &Value, expected: &Value) -> Eval {
        Ok(match op {
            "$eq" => strict_eq(actual, expected),
            "$ne" => !strict_eq(actual, expected),
            "$lt" => js_compare(actual, expected) == Some(Ordering::Less),
            "$lte" => matches!(
                js_compare(actual, expected),
                Some(Ordering::Less | Ordering::Equal)
            ),
            "$gt" => js_compare(actual, expected) == Some(Ordering::Greater),
            "$gte" => matches!(
                js_compare(actual, expected),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            "$exists" => truthy(expected) != actual.is_null(),
            "$in" => expected.as_array().is_some_and(|e| is_in(actual, e)),
            "$nin" => expected.as_array().is_some_and(|e| !is_in(actual, e)),
            "$not" => !self.eval_value(expected, actual)?,
            "$size" => match actual {
                Value::Array(items) => self.eval_value(expected, &Value::from(items.len()))?,
                _ => false,
            },
            "$elemMatch" => self.elem_match(actual, expected)?,
            "$all" => self.all(actual, expected)?,
            "$regex" => match expected {
                Value::String(pattern) => self.regex_matches(pattern, actual),
                _ => false,
            },
            "$type" => expected.as_str() == Some(type_name(actual)),
            "$veq" | "$vne" | "$vgt" | "$vgte" | "$vlt" | "$vlte" => {
                let order = js_str_cmp(
                    &padded_version_string(actual),
                    &padded_version_string(expected),
                );
                match op {
                    "$veq" => order.is_eq(),
                    "$vne" => order.is_ne(),
                    "$vgt" => order.is_gt(),
                    "$vgte" => order.is_ge(),
                    "$vlt" => order.is_lt(),
                    _ => order.is_le(),
                }
            }
            _ => false,
        })
    }

    fn elem_match(&self, actual: &Value, expected: &Value) -> Eval {
        let Value::Array(items) = actual else {
            return Ok(false);
        };
        let operator = match expected {
            // `Object.keys(null)` throws.
            Value::Null => return Err(Thrown),
            Value::Object(map) => is_operator_object(map),
            _ => false,
        };
        for item in items.iter().filter(|item| truthy(item)) {
            let matched = if operator {
                self.eval_value(expected, item)?
            } else {
                self.eval_condition(Root::Value(item), expected)?
            };
            if matched {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn all(&self, actual: &Value, expected: &Value) -> Eval {
        let Value::Array(items) = actual else {
            return Ok(false);
        };
        match expected {
            Value::Array(wanted) => {
                for want in wanted {
                    let mut found = false;
                    for item in items {
                        if self.eval_value(want, item)? {
                            found = true;
                            break;
                        }
                    }
                    if !found {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            // 0.5.4 indexes a string operand character by character.
            Value::String(s) => Ok(s.char_indices().all(|(i, c)| {
                let ch = &s[i..i + c.len_utf8()];
                items.iter().any(|item| js_text(item).as_str() == ch)
            })),
            // `null.length` throws; other operands have no length, so the loop is empty.
            Value::Null => Err(Thrown),
            _ => Ok(true),
        }
    }

    fn regex_matches(&self, pattern: &str, actual: &Value) -> bool {
        let text = js_text(actual);
        match self.regexes.get(pattern) {
            Some(Some(regex)) => regex.is_match(text.as_str()),
            Some(None) => false,
            // Unreachable for compiled conditions; stay correct rather than panic.
            None => compile_js_regex(pattern).is_ok_and(|r| r.is_match(text.as_str())),
        }
    }
}

/// The elements `$or`/`$and` iterate, mimicking how JS treats non-array operands.
fn logical_items(items: &Value) -> Result<&[Value], Thrown> {
    match items {
        Value::Array(items) => Ok(items),
        // `null.length` throws; a non-empty string's characters are not conditions.
        Value::Null => Err(Thrown),
        Value::String(s) if !s.is_empty() => Err(Thrown),
        _ => Ok(&[]),
    }
}

/// JS `getPath`: dot-separated descent where anything missing becomes `null`.
fn lookup<'a>(root: Root<'a>, path: &str) -> &'a Value {
    let mut segments = path.split('.');
    let Some(first) = segments.next() else {
        return &NULL;
    };
    let mut current = match root {
        Root::Attributes(map) => map.get(first),
        Root::Value(value) => child(value, first),
    };
    for segment in segments {
        current = current.and_then(|value| child(value, segment));
    }
    current.unwrap_or(&NULL)
}

fn child<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(key),
        // Arrays are objects in JS, so canonical indices select elements.
        Value::Array(items) => array_index(key).and_then(|i| items.get(i)),
        _ => None,
    }
}

/// Non-empty and every key starts with `$`; `{}` is compared by deep equality.
fn is_operator_object(map: &Map<String, Value>) -> bool {
    !map.is_empty() && map.keys().all(|k| k.starts_with('$'))
}

fn is_in(actual: &Value, expected: &[Value]) -> bool {
    match actual {
        Value::Array(items) => items
            .iter()
            .any(|item| expected.iter().any(|e| strict_eq(item, e))),
        _ => expected.iter().any(|e| strict_eq(actual, e)),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Walks a condition the way evaluation will, precompiling regexes and noting problems.
#[derive(Default)]
struct Compiler {
    regexes: HashMap<String, Option<Regex>>,
    problems: Vec<ConditionProblem>,
}

impl Compiler {
    fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(ConditionProblem {
            pointer: pointer.to_owned(),
            message: message.into(),
        });
    }

    /// Runs `f` with `segment` appended to the pointer, restoring it afterwards.
    fn at(&mut self, ptr: &mut String, segment: &str, f: impl FnOnce(&mut Self, &mut String)) {
        let len = ptr.len();
        ptr.push('/');
        ptr.push_str(&segment.replace('~', "~0").replace('/', "~1"));
        f(self, ptr);
        ptr.truncate(len);
    }

    fn walk_condition(&mut self, condition: &Value, ptr: &mut String) {
        let map = match condition {
            Value::Object(map) => map,
            Value::Array(items) => {
                self.problem(ptr, "a condition must be an object; this array's indices are treated as attribute paths");
                for (i, item) in items.iter().enumerate() {
                    self.at(ptr, &i.to_string(), |c, p| c.walk_value(item, p));
                }
                return;
            }
            _ => {
                self.problem(
                    ptr,
                    "a condition must be a JSON object; this one never matches",
                );
                return;
            }
        };
        let Some((logical, operand)) = LOGICAL_KEYS
            .into_iter()
            .find_map(|k| map.get(k).map(|v| (k, v)))
        else {
            for (path, expected) in map {
                self.at(ptr, path, |c, p| c.walk_value(expected, p));
            }
            return;
        };
        for key in map.keys().filter(|k| k.as_str() != logical) {
            let message =
                format!("ignored: GrowthBook 0.5.4 evaluates only `{logical}` when it is present");
            self.at(ptr, key, |c, p| c.problem(p, message));
        }
        self.at(ptr, logical, |c, p| match (logical, operand) {
            ("$not", inner) => c.walk_condition(inner, p),
            (_, Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    c.at(p, &i.to_string(), |c, p| c.walk_condition(item, p));
                }
            }
            _ => c.problem(p, format!("`{logical}` needs an array of conditions")),
        });
    }

    fn walk_value(&mut self, expected: &Value, ptr: &mut String) {
        let Value::Object(map) = expected else {
            return;
        };
        if !is_operator_object(map) {
            if map.keys().any(|k| k.starts_with('$')) {
                self.problem(
                    ptr,
                    "mixes `$` operators with plain keys, so it is compared by deep equality",
                );
            }
            return;
        }
        for (op, operand) in map {
            self.at(ptr, op, |c, p| c.walk_operator(op, operand, p));
        }
    }

    fn walk_operator(&mut self, op: &str, operand: &Value, ptr: &mut String) {
        match (op, operand) {
            ("$regex", Value::String(pattern)) => {
                if self.regexes.contains_key(pattern) {
                    return;
                }
                let compiled = compile_js_regex(pattern);
                if let Err(reason) = &compiled {
                    self.problem(
                        ptr,
                        format!("invalid regular expression ({reason}); it never matches"),
                    );
                }
                self.regexes.insert(pattern.clone(), compiled.ok());
            }
            ("$regex", _) => self.problem(ptr, "`$regex` needs a string pattern; it never matches"),
            ("$in" | "$nin", Value::Array(_)) => {}
            ("$in" | "$nin", _) => {
                self.problem(ptr, format!("`{op}` needs an array; it never matches"))
            }
            ("$not" | "$size", inner) => self.walk_value(inner, ptr),
            ("$elemMatch", Value::Object(map)) if is_operator_object(map) => {
                self.walk_value(operand, ptr)
            }
            ("$elemMatch", Value::Object(_)) => self.walk_condition(operand, ptr),
            ("$elemMatch", _) => self.problem(ptr, "`$elemMatch` needs an object"),
            ("$all", Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.at(ptr, &i.to_string(), |c, p| c.walk_value(item, p));
                }
            }
            ("$all", _) => self.problem(ptr, "`$all` needs an array"),
            ("$type", Value::String(t)) if TYPE_NAMES.contains(&t.as_str()) => {}
            ("$type", _) => self.problem(
                ptr,
                format!("`$type` must be one of {TYPE_NAMES:?}; it never matches"),
            ),
            _ if KNOWN_OPERATORS.contains(&op) => {}
            _ => self.problem(ptr, format!("unknown operator `{op}`; it never matches")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(condition: Value, attributes: Value) -> bool {
        let (compiled, _) = Condition::compile(&condition);
        compiled.matches(attributes.as_object().expect("attributes object"))
    }

    fn pointers(condition: Value) -> Vec<String> {
        let (_, problems) = Condition::compile(&condition);
        problems.into_iter().map(|p| p.pointer).collect()
    }

    #[test]
    fn invalid_regex_is_reported_at_its_pointer_and_never_matches() {
        let condition = json!({"sector": {"$regex": "/???***[)"}});
        let (compiled, problems) = Condition::compile(&condition);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].pointer, "/sector/$regex");
        assert!(problems[0].message.contains("invalid regular expression"));
        assert!(!compiled.matches(json!({"sector": "/???***[)"}).as_object().unwrap()));
        assert_eq!(compiled.as_json(), &condition);
    }

    #[test]
    fn structural_problems_are_located_by_json_pointer() {
        assert_eq!(
            pointers(json!({"$or": [{"a/b": {"$regx": 1}}]})),
            ["/$or/0/a~1b/$regx"]
        );
        assert_eq!(pointers(json!("not an object")), [""]);
        assert_eq!(pointers(json!({"$and": [], "country": "US"})), ["/country"]);
        assert_eq!(pointers(json!({"a": {"$gt": 1, "b": 2}})), ["/a"]);
        assert_eq!(pointers(json!({"a": {"$in": "x"}})), ["/a/$in"]);
        assert!(pointers(json!({"a": {"$elemMatch": {"b": {"$regex": "^x"}}}})).is_empty());
    }

    #[test]
    fn non_object_roots_never_match() {
        assert!(!check(json!("x"), json!({})));
        assert!(!check(json!(null), json!({})));
    }

    #[test]
    fn js_exceptions_fail_the_whole_condition() {
        // `evalCondition(attrs, 5)` throws in JS; a negation must not turn that into a match.
        assert!(!check(json!({"$nor": [5]}), json!({})));
        assert!(!check(json!({"$or": null}), json!({})));
        assert!(!check(
            json!({"a": {"$not": {"$elemMatch": null}}}),
            json!({"a": [1]})
        ));
        // Operands without a length are loops over nothing in JS.
        assert!(check(json!({"$or": {}}), json!({})));
    }

    #[test]
    fn regexes_follow_ecmascript_semantics() {
        let re = |pattern: &str, text: &str| {
            check(json!({"s": {"$regex": pattern}}), json!({"s": text}))
        };
        assert!(!re(r"^\d$", "\u{663}"), "JS \\d is ASCII only");
        assert!(!re(r"^\w$", "é"), "JS \\w is ASCII only");
        assert!(!re("^.$", "\r"), "JS . excludes line terminators");
        assert!(re(r"^\s$", "\u{FEFF}"));
        assert!(re("^a{$", "a{"), "a brace without a quantifier is literal");
        assert!(re(r"^[\d-z]$", "-"), "class escape then dash is a union");
        assert!(re(r"^\q$", "q"), "identity escape");
        assert!(re(r"^\u0041\x42$", "AB"));
        assert!(!re("(?i)a", "A"), "inline flags are a JS syntax error");
        assert!(!re("[]", ""), "empty class matches nothing");
        assert!(re("^[^]$", "\n"));
        assert_eq!(pointers(json!({"s": {"$regex": "(?i)a"}})), ["/s/$regex"]);
    }

    #[test]
    fn values_coerce_like_javascript() {
        assert!(check(json!({"n": "1"}), json!({"n": 1.0})));
        assert!(check(json!({"n": "1e+21"}), json!({"n": 1e21})));
        assert!(check(json!({"n": "a,,1"}), json!({"n": ["a", null, 1]})));
        assert!(check(json!({"n": "[object Object]"}), json!({"n": {}})));
        assert!(check(json!({"n": 8}), json!({"n": " 8\n"})));
        assert!(check(json!({"n": 16}), json!({"n": "0x10"})));
        assert!(!check(json!({"n": 1}), json!({"n": "1_0"})));
        assert!(check(json!({"n": 0}), json!({})));
        assert!(check(json!({"flag": false}), json!({})));
        assert!(check(json!({"n": {"$gt": 1}}), json!({"n": [2]})));
        assert!(check(json!({"s": {"$lt": "b"}}), json!({"s": ["a"]})));
        assert!(!check(json!({"n": {"$eq": [1]}}), json!({"n": [1]})));
        assert!(check(
            json!({"n": {"$regex": "^1e\\+21$"}}),
            json!({"n": 1e21})
        ));
    }

    #[test]
    fn deep_equality_uses_js_key_order() {
        let cond = json!({"o": {"b": 1, "1": 2}});
        assert!(check(cond, json!({"o": {"1": 2, "b": 1.0}})));
        assert!(!check(
            json!({"o": {"b": 1, "c": 2}}),
            json!({"o": {"c": 2, "b": 1}})
        ));
        assert!(check(json!({"o": {}}), json!({"o": {}})));
    }

    #[test]
    fn paths_index_arrays_like_js_objects() {
        assert!(check(json!({"tags.1": "b"}), json!({"tags": ["a", "b"]})));
        assert!(!check(json!({"tags.01": "b"}), json!({"tags": ["a", "b"]})));
        assert!(check(
            json!({"$groups": {"$all": "ab"}}),
            json!({"$groups": ["b", "a"]})
        ));
    }
}
