//! A JSON object written straight into a batch buffer, for records whose lines are written by
//! hand instead of through serde (the writer thread's hot path). Keys are `'static` names that
//! need no escaping, so each is one copy; string values take one scan and one copy unless they
//! hold a character JSON must escape; numbers and anything else go through `serde_json`, so a
//! line is byte for byte what `serde_json::to_writer` would write for the same fields in the
//! same order.

use serde::Serialize;

/// An open JSON object at the end of `out`; [`JsonObject::end`] closes it.
pub(crate) struct JsonObject<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    /// Starts an object at the end of `out`.
    pub(crate) fn begin(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, empty: true }
    }

    /// Closes the object.
    pub(crate) fn end(self) {
        self.out.push(b'}');
    }

    fn key(&mut self, key: &'static str) {
        debug_assert!(!needs_escaping(key.as_bytes()), "key {key} needs escaping");
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// `"key":"value"`, escaped as `serde_json` escapes it.
    pub(crate) fn str(&mut self, key: &'static str, value: &str) {
        self.key(key);
        write_str(self.out, value);
    }

    /// `"key":"value"` when there is a value.
    pub(crate) fn opt_str(&mut self, key: &'static str, value: Option<&str>) {
        if let Some(value) = value {
            self.str(key, value);
        }
    }

    /// `"key":` and the raw bytes of a value the caller already wrote as JSON.
    pub(crate) fn raw(&mut self, key: &'static str, json: &[u8]) {
        self.key(key);
        self.out.extend_from_slice(json);
    }

    /// `"key":` and `value` through `serde_json` (numbers, booleans, nested values).
    pub(crate) fn value<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        self.key(key);
        serde_json::to_writer(&mut *self.out, value)
    }
}

/// Appends `value` as a JSON string: one copy when nothing in it needs escaping.
pub(crate) fn write_str(out: &mut Vec<u8>, value: &str) {
    if needs_escaping(value.as_bytes()) {
        // Writing into a `Vec` cannot fail, and a `str` always serializes.
        let _ = serde_json::to_writer(&mut *out, value);
        return;
    }
    out.reserve(value.len() + 2);
    out.push(b'"');
    out.extend_from_slice(value.as_bytes());
    out.push(b'"');
}

/// True when a byte is one JSON escapes: a control character, `"` or `\`.
fn needs_escaping(bytes: &[u8]) -> bool {
    // Folded over fixed chunks without an early exit, so the compiler can vectorise the scan.
    let mut chunks = bytes.chunks_exact(16);
    let escaped =
        |found: bool, byte: &u8| found | (*byte < 0x20) | (*byte == b'"') | (*byte == b'\\');
    for chunk in &mut chunks {
        if chunk.iter().fold(false, escaped) {
            return true;
        }
    }
    chunks.remainder().iter().fold(false, escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(build: impl FnOnce(&mut JsonObject<'_>)) -> String {
        let mut out = Vec::new();
        let mut object = JsonObject::begin(&mut out);
        build(&mut object);
        object.end();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut every_ascii: String = (0u8..128).map(char::from).collect();
        every_ascii.push_str("é€😀 \u{2028}");
        for value in [
            "",
            "plain",
            "a\"quote",
            "back\\slash",
            "new\nline\ttab",
            "a longer string of more than sixteen bytes, then a \u{1} control",
            every_ascii.as_str(),
        ] {
            let mut out = Vec::new();
            write_str(&mut out, value);
            assert_eq!(out, serde_json::to_vec(value).unwrap(), "{value:?}");
        }
    }

    #[test]
    fn an_object_is_what_serde_json_writes_for_the_same_fields() {
        let written = object(|object| {
            object.str("event", "llm.request");
            object.opt_str("absent", None);
            object.opt_str("variant", Some("con\"cise"));
            object.value("count", &42u64).unwrap();
            object.value("latency_ms", &2317.4f64).unwrap();
            object.value("nan", &f64::NAN).unwrap();
            object.raw("nested", b"{\"a\":1}");
        });
        let expected = serde_json::json!({
            "event": "llm.request",
            "variant": "con\"cise",
            "count": 42,
            "latency_ms": 2317.4,
            "nan": null,
            "nested": {"a": 1},
        });
        assert_eq!(written, expected.to_string());
    }

    #[test]
    fn an_empty_object_is_two_braces() {
        assert_eq!(object(|_| {}), "{}");
    }
}
