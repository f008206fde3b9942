//! Strict reading of config JSON. `serde_json` keeps the last of two equal keys in an object
//! without a word, so a merge that leaves `"active_version"` twice serves whichever came last
//! while an editor (or `rollback`) sees the first. Here every object key is checked against the
//! keys before it, and each duplicate is reported with its RFC 6901 pointer. A UTF-8 byte-order
//! mark at the start is accepted and skipped (RFC 8259 §8.1 lets parsers ignore it); a UTF-16 or
//! UTF-32 one is reported as such, since the file is then not UTF-8 at all.

use std::cell::RefCell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::pointer_token;

/// The UTF-8 encoding of U+FEFF, which some editors write at the start of a file.
pub(crate) const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a config file's bytes are not one usable JSON document.
#[derive(Debug)]
pub(crate) enum JsonProblem {
    /// The text is not JSON.
    Syntax(serde_json::Error),
    /// The file starts with a UTF-16 or UTF-32 byte-order mark: it is not UTF-8.
    ForeignBom(&'static str),
    /// Objects name a key more than once: the pointers of every later occurrence, and the
    /// document as serde_json would read it (last value wins), so the rest can still be checked.
    DuplicateKeys {
        /// One pointer per repeated occurrence.
        pointers: Vec<String>,
        /// The document with the last value of each repeated key.
        document: Box<Value>,
    },
}

impl JsonProblem {
    /// The problem as `(pointer, message)` pairs, for [`super::Problem`]s.
    pub(crate) fn located(&self) -> Vec<(String, String)> {
        match self {
            JsonProblem::Syntax(error) => vec![(
                String::new(),
                format!(
                    "invalid JSON at line {} column {}: {error}",
                    error.line(),
                    error.column()
                ),
            )],
            JsonProblem::ForeignBom(encoding) => vec![(
                String::new(),
                format!(
                    "the file starts with a {encoding} byte-order mark; config files must be \
                     UTF-8 (save it as UTF-8)"
                ),
            )],
            JsonProblem::DuplicateKeys { pointers, .. } => pointers
                .iter()
                .map(|pointer| {
                    let key = pointer.rsplit('/').next().unwrap_or_default();
                    let key = key.replace("~1", "/").replace("~0", "~");
                    (
                        pointer.clone(),
                        format!(
                            "duplicate key \"{key}\": an object may name a key only once (a JSON \
                             reader would silently keep only the last value); remove one"
                        ),
                    )
                })
                .collect(),
        }
    }
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let located = self.located();
        for (index, (pointer, message)) in located.iter().enumerate() {
            if index > 0 {
                formatter.write_str("; ")?;
            }
            if pointer.is_empty() {
                write!(formatter, "{message}")?;
            } else {
                write!(formatter, "{pointer}: {message}")?;
            }
        }
        Ok(())
    }
}

/// The bytes after a UTF-8 byte-order mark, or all of them when there is none.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes)
}

/// Parses one JSON document, refusing duplicate keys and foreign byte-order marks.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, JsonProblem> {
    // UTF-32 LE starts like UTF-16 LE, so it is checked first.
    for (mark, encoding) in [
        (&b"\x00\x00\xFE\xFF"[..], "UTF-32"),
        (&b"\xFF\xFE\x00\x00"[..], "UTF-32"),
        (&b"\xFE\xFF"[..], "UTF-16"),
        (&b"\xFF\xFE"[..], "UTF-16"),
    ] {
        if bytes.starts_with(mark) {
            return Err(JsonProblem::ForeignBom(encoding));
        }
    }
    let duplicates = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_slice(strip_bom(bytes));
    let value = ValueAt {
        at: None,
        duplicates: &duplicates,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value))
    .map_err(JsonProblem::Syntax)?;
    let duplicates = duplicates.into_inner();
    if duplicates.is_empty() {
        Ok(value)
    } else {
        Err(JsonProblem::DuplicateKeys {
            pointers: duplicates,
            document: Box::new(value),
        })
    }
}

/// Where a value sits: its parent's place and its own key or index. Kept as a chain of borrows
/// on the stack, so a pointer string is only built for a duplicate key, not for every value of
/// every document (formatting one per value was a large part of loading 1,000 features).
struct Place<'a> {
    parent: Option<&'a Place<'a>>,
    step: Step<'a>,
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// The RFC 6901 pointer of `place`.
fn pointer_of(place: Option<&Place<'_>>) -> String {
    let mut steps = Vec::new();
    let mut current = place;
    while let Some(place) = current {
        steps.push(&place.step);
        current = place.parent;
    }
    let mut pointer = String::new();
    for step in steps.into_iter().rev() {
        pointer.push('/');
        match step {
            Step::Key(key) => pointer.push_str(&pointer_token(key)),
            Step::Index(index) => pointer.push_str(&index.to_string()),
        }
    }
    pointer
}

/// Deserializes the value at `at` (`None`: the root), recording duplicate keys instead of
/// stopping at the first, so one run reports them all.
struct ValueAt<'a> {
    at: Option<&'a Place<'a>>,
    duplicates: &'a RefCell<Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for ValueAt<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueAt<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // serde_json never hands a visitor a non-finite number, so this is always `Some`.
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_string()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let place = Place {
                parent: self.at,
                step: Step::Index(items.len()),
            };
            let item = sequence.next_element_seed(ValueAt {
                at: Some(&place),
                duplicates: self.duplicates,
            })?;
            match item {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let place = Place {
                parent: self.at,
                step: Step::Key(&key),
            };
            let value = map.next_value_seed(ValueAt {
                at: Some(&place),
                duplicates: self.duplicates,
            })?;
            let pointer = object
                .contains_key(&key)
                .then(|| pointer_of(Some(&place)));
            object.insert(key, value);
            if let Some(pointer) = pointer {
                self.duplicates.borrow_mut().push(pointer);
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::{JsonProblem, parse_strict};
    use serde_json::json;

    fn duplicates(text: &str) -> Vec<String> {
        match parse_strict(text.as_bytes()) {
            Err(JsonProblem::DuplicateKeys { pointers, .. }) => pointers,
            other => panic!("expected duplicate keys, got {other:?}"),
        }
    }

    #[test]
    fn parses_like_serde_json_when_keys_are_unique() {
        let text = r#"{"a": [1, -2, 2.5, "x", null, true, {"b": {}}], "c~/d": {"e": []}}"#;
        let strict = parse_strict(text.as_bytes()).unwrap();
        assert_eq!(
            strict,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
        assert_eq!(strict["a"][2], json!(2.5));
    }

    #[test]
    fn a_repeated_top_level_key_is_reported_at_its_pointer() {
        assert_eq!(
            duplicates(r#"{"active_version": "1.0.0", "active_version": "2.0.0"}"#),
            ["/active_version"]
        );
    }

    #[test]
    fn every_nested_duplicate_is_reported_with_its_full_escaped_pointer() {
        let text = r#"{"x": [{"y": {"a/b": 1, "a/b": 2}}, {"k": 1, "k": 2, "k": 3}]}"#;
        assert_eq!(duplicates(text), ["/x/0/y/a~1b", "/x/1/k", "/x/1/k"]);
    }

    #[test]
    fn keys_equal_after_unescaping_are_duplicates() {
        assert_eq!(duplicates(r#"{"ab": 1, "a\u0062": 2}"#), ["/ab"]);
    }

    #[test]
    fn a_utf8_byte_order_mark_is_skipped() {
        let mut bytes = b"\xEF\xBB\xBF".to_vec();
        bytes.extend_from_slice(br#"{"a": 1}"#);
        assert_eq!(parse_strict(&bytes).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn a_utf16_byte_order_mark_is_named() {
        let error = parse_strict(b"\xFF\xFE{\x00}\x00").unwrap_err();
        assert!(
            error.to_string().contains("UTF-16 byte-order mark"),
            "{error}"
        );
    }

    #[test]
    fn trailing_text_is_a_syntax_error() {
        assert!(matches!(
            parse_strict(br#"{"a": 1} {"#),
            Err(JsonProblem::Syntax(_))
        ));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::{JsonProblem, parse_strict};

    /// Arbitrary JSON documents (objects built from maps, so without duplicate keys).
    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |number| number.is_finite())
                .prop_map(Value::from),
            ".{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((".{0,6}", inner), 0..6)
                    .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    proptest! {
        #[test]
        fn documents_without_duplicates_parse_as_serde_json_parses_them(document in json()) {
            let text = serde_json::to_string_pretty(&document).unwrap();
            let strict = parse_strict(text.as_bytes()).unwrap();
            prop_assert_eq!(&strict, &serde_json::from_str::<Value>(&text).unwrap());
            prop_assert_eq!(strict, document);
        }

        #[test]
        fn a_repeated_key_is_always_found_at_its_pointer(
            document in json(),
            key in ".{0,6}",
        ) {
            // `{"x": [document-with-the-key-twice]}`: the repeat sits at /x/0/<key>.
            let value = serde_json::to_string(&document).unwrap();
            let key_json = serde_json::to_string(&key).unwrap();
            let text = format!(r#"{{"x": [{{{key_json}: {value}, {key_json}: {value}}}]}}"#);
            match parse_strict(text.as_bytes()) {
                Err(JsonProblem::DuplicateKeys { pointers, .. }) => {
                    let expected = format!("/x/0/{}", super::pointer_token(&key));
                    prop_assert!(pointers.contains(&expected), "{:?}", pointers);
                }
                other => prop_assert!(false, "expected duplicates, got {:?}", other),
            }
        }
    }
}
