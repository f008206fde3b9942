//! Key names: the configured prefix, then a Redis Cluster hash tag holding what one script
//! touches, so all keys of one script live in one slot (a cluster refuses a script whose keys
//! span slots).

/// Builds the keys of the shared state under one prefix.
///
/// Shape: `PREFIX:KIND:{PART|PART}:FIELD`. Only the braces' content is hashed by a cluster, so
/// every key of one budget window (or one rate limit) shares a slot while different budgets
/// spread over the nodes. `{`, `}` and `%` inside a part are percent-encoded, so a scope can
/// never close the tag early or collide with another scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyspace {
    prefix: String,
}

impl Keyspace {
    /// Keys under `prefix` (checked by [`RedisSettings`](super::RedisSettings): no braces).
    pub fn new(prefix: impl Into<String>) -> Keyspace {
        Keyspace {
            prefix: prefix.into(),
        }
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `PREFIX:KIND:{PART|PART|...}:FIELD`.
    pub fn key(&self, kind: &str, tag_parts: &[&str], field: &str) -> String {
        let tag: Vec<String> = tag_parts.iter().map(|part| escape(part)).collect();
        format!("{}:{kind}:{{{}}}:{field}", self.prefix, tag.join("|"))
    }
}

/// Percent-encodes the characters that would break a hash tag or the part separator.
fn escape(part: &str) -> String {
    let mut escaped = String::with_capacity(part.len());
    for c in part.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '{' => escaped.push_str("%7B"),
            '}' => escaped.push_str("%7D"),
            '|' => escaped.push_str("%7C"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The hash tag of `key` (the content of its first `{...}`), as a cluster computes it.
#[cfg(test)]
pub(crate) fn hash_tag(key: &str) -> &str {
    let Some(open) = key.find('{') else {
        return key;
    };
    match key[open + 1..].find('}') {
        Some(0) | None => key,
        Some(close) => &key[open + 1..open + 1 + close],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_the_prefix_and_one_hash_tag() {
        let keys = Keyspace::new("app");
        assert_eq!(
            keys.key("budget", &["feature:summarize", "day:2026-11-30"], "totals"),
            "app:budget:{feature:summarize|day:2026-11-30}:totals"
        );
    }

    #[test]
    fn the_keys_of_one_window_share_a_tag_and_braces_in_a_scope_cannot_close_it() {
        let keys = Keyspace::new("app");
        let a = keys.key("budget", &["x}y{", "day:2026-11-30"], "totals");
        let b = keys.key("budget", &["x}y{", "day:2026-11-30"], "reservations");
        assert_eq!(hash_tag(&a), hash_tag(&b));
        assert_eq!(hash_tag(&a), "x%7Dy%7B|day:2026-11-30");
        let other = keys.key("budget", &["x", "y}y{|day:2026-11-30"], "totals");
        assert_ne!(hash_tag(&a), hash_tag(&other));
    }

    proptest::proptest! {
        #[test]
        fn any_scope_yields_keys_whose_tag_is_the_whole_escaped_scope(scope in ".*", field in "[a-z]{1,8}") {
            let keys = Keyspace::new("p");
            let key = keys.key("budget", &[&scope, "day:2026-11-30"], &field);
            let tag = hash_tag(&key);
            proptest::prop_assert_eq!(tag, format!("{}|day:2026-11-30", escape(&scope)));
            proptest::prop_assert!(!tag.contains(['{', '}']), "braces left in {:?}", tag);
        }
    }
}
