//! GrowthBook's padded version strings (§4.7), and the JavaScript value
//! semantics (ToString, ToNumber, truthiness, ordering, JSON equality) that
//! version strings and conditions share, so both behave like the JS SDK.

use std::cmp::Ordering;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Normalizes a version so plain string comparison orders versions like GrowthBook does.
pub fn padded_version_string(input: &Value) -> String {
    let number;
    let text: &str = match input {
        Value::Number(n) => {
            number = js_number_to_string(n.as_f64().unwrap_or(f64::NAN));
            number.as_str()
        }
        Value::String(s) if !s.is_empty() => s,
        _ => "0",
    };
    let text = strip_prefix_and_build(text);

    let part_count = text.split(['.', '-']).count();
    let mut out = String::with_capacity(text.len() + 8 * part_count);
    for (i, part) in text.split(['.', '-']).enumerate() {
        if i > 0 {
            out.push('-');
        }
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            // Space sorts below digits, so padding makes "9" < "10" as strings.
            for _ in part.len()..5 {
                out.push(' ');
            }
        }
        out.push_str(part);
    }
    if part_count == 3 {
        // "~" sorts after letters and digits, so a release beats its pre-releases.
        out.push_str("-~");
    }
    out
}

/// Orders two versions the way GrowthBook's `$v*` operators do.
pub fn compare_versions(a: &Value, b: &Value) -> Ordering {
    js_str_cmp(&padded_version_string(a), &padded_version_string(b))
}

/// Mirrors the JS `/(^v|\+.*$)/g` replacement: one leading `v`, then build metadata.
fn strip_prefix_and_build(text: &str) -> &str {
    let text = text.strip_prefix('v').unwrap_or(text);
    // `.` stops at JS line terminators, so only a `+` after the last one can reach `$`.
    let tail_start = text
        .rfind(['\n', '\r', '\u{2028}', '\u{2029}'])
        .map_or(0, |i| i + 1);
    match text[tail_start..].find('+') {
        Some(plus) => &text[..tail_start + plus],
        None => text,
    }
}

/// Compares strings by UTF-16 code units, which is how JS `<` orders strings.
pub(super) fn js_str_cmp(a: &str, b: &str) -> Ordering {
    // With one side ASCII, the first difference involves an ASCII char, where
    // UTF-8 byte order and UTF-16 order agree.
    if a.is_ascii() || b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

/// A JS number rendered as text on the stack, so coercions need no heap.
pub(super) struct JsNumber {
    buf: [u8; 32],
    len: usize,
}

impl JsNumber {
    fn new() -> Self {
        Self {
            buf: [0; 32],
            len: 0,
        }
    }

    /// The rendered text, exactly as JS `String(number)` would produce it.
    pub(super) fn as_str(&self) -> &str {
        // Only ASCII is ever written, so this cannot fail.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("NaN")
    }
}

impl std::fmt::Write for JsNumber {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// ECMAScript `Number::toString`: shortest round-trip digits in JS layout.
pub(super) fn js_number_to_string(x: f64) -> JsNumber {
    let mut out = JsNumber::new();
    if x.is_nan() {
        let _ = out.write_str("NaN");
        return out;
    }
    if x == 0.0 {
        // Covers -0 as well: JS prints both zeros as "0".
        let _ = out.write_str("0");
        return out;
    }
    if x < 0.0 {
        let _ = out.write_str("-");
    }
    if x.is_infinite() {
        let _ = out.write_str("Infinity");
        return out;
    }

    // Rust's `{:e}` yields the shortest round-trip digits as "d.ddde-7".
    let mut sci = JsNumber::new();
    let _ = write!(sci, "{:e}", x.abs());
    let sci = sci.as_str();
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let mut digits = [0u8; 20];
    let mut k = 0;
    for b in mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .take(digits.len())
    {
        digits[k] = b;
        k += 1;
    }
    let digits = std::str::from_utf8(&digits[..k]).unwrap_or("0");
    let k = i32::try_from(k).unwrap_or(0);
    // In spec terms the value is 0.digits × 10^n.
    let n = exponent + 1;

    let _ = if k <= n && n <= 21 {
        write!(out, "{digits}{:0<width$}", "", width = (n - k) as usize)
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        write!(out, "{int}.{frac}")
    } else if -6 < n && n <= 0 {
        write!(out, "0.{:0<width$}{digits}", "", width = (-n) as usize)
    } else {
        let sign = if n >= 1 { '+' } else { '-' };
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let dot = if rest.is_empty() { "" } else { "." };
        write!(out, "{first}{dot}{rest}e{sign}{}", (n - 1).abs())
    };
    out
}

/// Parses a canonical JS array index ("0", "17"; not "01" or "+1").
pub(super) fn array_index(key: &str) -> Option<usize> {
    let canonical = key == "0" || (!key.starts_with('0') && key.len() <= 10);
    if !canonical || key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u64>()
        .ok()
        .filter(|&i| i < u64::from(u32::MAX))
        .and_then(|i| usize::try_from(i).ok())
}

/// JS truthiness: null, false, 0, NaN and "" are falsy; arrays and objects are not.
pub(super) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JS `===` on parsed JSON: arrays and objects are distinct references, never equal.
pub(super) fn strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        _ => false,
    }
}

/// A JS string conversion, borrowed or on the stack when it can be.
pub(super) enum JsText<'a> {
    Borrowed(&'a str),
    Number(JsNumber),
    Owned(String),
}

impl JsText<'_> {
    pub(super) fn as_str(&self) -> &str {
        match self {
            JsText::Borrowed(s) => s,
            JsText::Number(n) => n.as_str(),
            JsText::Owned(s) => s,
        }
    }
}

/// JS `String(value)`: arrays join with commas, objects become "[object Object]".
pub(super) fn js_text(value: &Value) -> JsText<'_> {
    match value {
        Value::String(s) => JsText::Borrowed(s),
        Value::Null => JsText::Borrowed("null"),
        Value::Bool(true) => JsText::Borrowed("true"),
        Value::Bool(false) => JsText::Borrowed("false"),
        Value::Number(n) => JsText::Number(js_number_to_string(n.as_f64().unwrap_or(f64::NAN))),
        Value::Object(_) => JsText::Borrowed("[object Object]"),
        Value::Array(items) => {
            let mut out = String::new();
            join_into(&mut out, items);
            JsText::Owned(out)
        }
    }
}

/// `Array.prototype.join(",")`, where null elements become empty strings.
pub(super) fn join_into(out: &mut String, items: &[Value]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Value::Null => {}
            Value::Array(nested) => join_into(out, nested),
            other => out.push_str(js_text(other).as_str()),
        }
    }
}

/// JS `ToNumber` of a JSON value.
pub(super) fn js_to_number(value: &Value) -> f64 {
    match value {
        Value::Null | Value::Bool(false) => 0.0,
        Value::Bool(true) => 1.0,
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => js_string_to_number(s),
        Value::Array(_) => js_string_to_number(js_text(value).as_str()),
        Value::Object(_) => f64::NAN,
    }
}

/// JS relational comparison: strings compare as strings only when both sides are strings.
pub(super) fn js_compare(a: &Value, b: &Value) -> Option<Ordering> {
    let stringish = |v: &Value| matches!(v, Value::Array(_) | Value::Object(_) | Value::String(_));
    if stringish(a) && stringish(b) {
        // Arrays and objects become strings first (ToPrimitive), then compare as strings.
        return Some(js_str_cmp(js_text(a).as_str(), js_text(b).as_str()));
    }
    js_to_number(a).partial_cmp(&js_to_number(b))
}

/// The characters JS `String.prototype.trim` and `StringToNumber` strip.
pub(super) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{B}' | '\u{C}' | '\r' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200A}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202F}'
                | '\u{205F}'
                | '\u{3000}'
                | '\u{FEFF}'
    )
}

/// JS `StringToNumber`: trimmed decimal, `0x`/`0o`/`0b` integers, `Infinity`; else NaN.
pub(super) fn js_string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(is_js_whitespace);
    match t {
        "" => return 0.0,
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    let radix = match t.get(..2) {
        Some("0x" | "0X") => 16,
        Some("0o" | "0O") => 8,
        Some("0b" | "0B") => 2,
        _ => 10,
    };
    if radix != 10 {
        let digits = &t[2..];
        if digits.is_empty() {
            return f64::NAN;
        }
        return digits
            .chars()
            .try_fold(0.0, |acc, c| {
                c.to_digit(radix)
                    .map(|d| acc * f64::from(radix) + f64::from(d))
            })
            .unwrap_or(f64::NAN);
    }
    if is_decimal_literal(t) {
        t.parse().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// JS StrDecimalLiteral grammar, which is narrower than what Rust's parser accepts.
pub(super) fn is_decimal_literal(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if b.get(i) == Some(&b'.') {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `JSON.stringify(a) === JSON.stringify(b)` without serializing either side.
pub(super) fn json_text_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_text_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) if x.len() != y.len() => false,
        (Value::Object(x), Value::Object(y)) if has_index_keys(x) || has_index_keys(y) => {
            let (x, y) = (js_key_order(x), js_key_order(y));
            x.iter()
                .zip(&y)
                .all(|((ka, va), (kb, vb))| ka == kb && json_text_eq(va, vb))
        }
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .zip(y)
            .all(|((ka, va), (kb, vb))| ka == kb && json_text_eq(va, vb)),
        _ => strict_eq(a, b),
    }
}

/// Whether JS would move some keys of this object to the front when iterating it.
pub(super) fn has_index_keys(map: &Map<String, Value>) -> bool {
    map.keys().any(|k| array_index(k).is_some())
}

/// JS object key order: array-index keys ascending, then the rest in insertion order.
pub(super) fn js_key_order(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    // Stable sort keeps insertion order among the non-index keys.
    entries.sort_by_key(|(k, _)| array_index(k).map_or((1, 0), |i| (0, i)));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn js(x: f64) -> String {
        js_number_to_string(x).as_str().to_owned()
    }

    #[test]
    fn numbers_print_like_javascript() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (-0.0, "0"),
            (123.456, "123.456"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (0.000001, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (9_007_199_254_740_993.0, "9007199254740992"),
        ];
        for &(x, expected) in cases {
            assert_eq!(js(x), expected, "{x:e}");
        }
    }

    #[test]
    fn padded_strings_follow_the_spec_steps() {
        assert_eq!(
            padded_version_string(&json!("v1.2.3+build")),
            "    1-    2-    3-~"
        );
        assert_eq!(
            padded_version_string(&json!("1.0.0--")),
            "    1-    0-    0--"
        );
        assert_eq!(padded_version_string(&json!(1.5)), "    1-    5");
        assert_eq!(padded_version_string(&json!("")), "    0");
        assert_eq!(padded_version_string(&json!(null)), "    0");
        assert_eq!(padded_version_string(&json!("123456")), "123456");
        // `.*$` cannot cross a line break, so that `+` is not build metadata.
        assert_eq!(padded_version_string(&json!("1.2+a\nb")), "    1-2+a\nb");
    }

    #[test]
    fn string_order_is_by_utf16_code_units() {
        // U+FF61 is one unit 0xFF61; U+1F600 starts with 0xD83D, so JS sorts it first.
        assert_eq!(js_str_cmp("\u{1F600}", "\u{FF61}"), Ordering::Less);
        assert_eq!("\u{1F600}".cmp("\u{FF61}"), Ordering::Greater);
        assert_eq!(js_str_cmp("a", "b"), Ordering::Less);
    }

    #[test]
    fn compare_versions_orders_releases_after_prereleases() {
        assert_eq!(
            compare_versions(&json!("1.0.0"), &json!("1.0.0-rc.1")),
            Ordering::Greater
        );
        assert_eq!(
            compare_versions(&json!("1-2-3"), &json!("v1.2.3")),
            Ordering::Equal
        );
    }
}
