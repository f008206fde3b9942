//! Finds where a value sits in JSON text, so commands can rewrite one value and leave every
//! other byte of a hand-edited file (formatting, key order, spacing) exactly as it was.

use std::ops::Range;

/// The byte range of the value at `path` (object keys from the root), if present.
pub(crate) fn value_span(text: &str, path: &[&str]) -> Option<Range<usize>> {
    let bytes = text.as_bytes();
    let start = skip_whitespace(bytes, 0);
    let end = skip_value(bytes, start)?;
    find(text, start..end, path)
}

fn find(text: &str, span: Range<usize>, path: &[&str]) -> Option<Range<usize>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(span);
    };
    let bytes = text.as_bytes();
    if bytes.get(span.start) != Some(&b'{') {
        return None;
    }
    let mut position = skip_whitespace(bytes, span.start + 1);
    while position < span.end && bytes[position] != b'}' {
        let key_end = skip_string(bytes, position)?;
        let key: String = serde_json::from_str(&text[position..key_end]).ok()?;
        position = skip_whitespace(bytes, key_end);
        if bytes.get(position) != Some(&b':') {
            return None;
        }
        let value_start = skip_whitespace(bytes, position + 1);
        let value_end = skip_value(bytes, value_start)?;
        if key == *first {
            return find(text, value_start..value_end, rest);
        }
        position = skip_whitespace(bytes, value_end);
        if bytes.get(position) == Some(&b',') {
            position = skip_whitespace(bytes, position + 1);
        }
    }
    None
}

fn skip_whitespace(bytes: &[u8], mut position: usize) -> usize {
    while bytes.get(position).is_some_and(u8::is_ascii_whitespace) {
        position += 1;
    }
    position
}

fn skip_string(bytes: &[u8], start: usize) -> Option<usize> {
    if bytes.get(start) != Some(&b'"') {
        return None;
    }
    let mut position = start + 1;
    loop {
        match bytes.get(position)? {
            b'\\' => position += 2,
            b'"' => return Some(position + 1),
            _ => position += 1,
        }
    }
}

fn skip_value(bytes: &[u8], start: usize) -> Option<usize> {
    match bytes.get(start)? {
        b'"' => skip_string(bytes, start),
        open @ (b'{' | b'[') => {
            let close = if *open == b'{' { b'}' } else { b']' };
            let mut position = skip_whitespace(bytes, start + 1);
            if bytes.get(position) == Some(&close) {
                return Some(position + 1);
            }
            loop {
                if *open == b'{' {
                    position = skip_whitespace(bytes, skip_string(bytes, position)?);
                    if bytes.get(position) != Some(&b':') {
                        return None;
                    }
                    position = skip_whitespace(bytes, position + 1);
                }
                position = skip_whitespace(bytes, skip_value(bytes, position)?);
                match bytes.get(position)? {
                    b',' => position = skip_whitespace(bytes, position + 1),
                    byte if *byte == close => return Some(position + 1),
                    _ => return None,
                }
            }
        }
        _ => {
            let mut position = start;
            while bytes.get(position).is_some_and(|byte| {
                byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'.')
            }) {
                position += 1;
            }
            (position > start).then_some(position)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::value_span;

    #[test]
    fn finds_top_level_and_nested_values() {
        let text = r#"{ "a": [1, {"x": "}"}], "b": {"c\"d": 2, "e": {"f": "g"}} }"#;
        assert_eq!(
            &text[value_span(text, &["a"]).unwrap()],
            r#"[1, {"x": "}"}]"#
        );
        assert_eq!(&text[value_span(text, &["b", "c\"d"]).unwrap()], "2");
        assert_eq!(
            &text[value_span(text, &["b", "e"]).unwrap()],
            r#"{"f": "g"}"#
        );
    }

    #[test]
    fn missing_key_gives_none() {
        assert_eq!(value_span(r#"{"a": 1}"#, &["b"]), None);
        assert_eq!(value_span(r#"{"a": 1}"#, &["a", "b"]), None);
    }
}
