//! The API key as a value that cannot leak by accident: it has no `Display` and no `Serialize`,
//! its `Debug` prints `ApiKey(***)`, and the only way to read it is [`ApiKey::expose`], called
//! when a provider builds its authentication header. It also scrubs the key out of text a
//! server sends back, in case a proxy echoes request headers into an error message.

use std::fmt;

use super::types::{AttemptError, FailureKind};

/// What replaces a secret wherever it would otherwise be shown.
const MASK: &str = "***";

/// The shortest key [`ApiKey::redact`] masks; provider keys are dozens of characters.
const MIN_MASKED_CHARS: usize = 8;

/// An API key read from the environment; never printed, logged or serialized.
#[derive(Clone)]
pub struct ApiKey {
    key: String,
}

impl ApiKey {
    /// Wraps a key obtained some other way than the environment (tests, a secret manager).
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey { key: key.into() }
    }

    /// Reads the key from `variable`; an unset, empty or non-UTF-8 variable counts as missing.
    pub fn from_env(variable: &str) -> Option<ApiKey> {
        ApiKey::from_value(std::env::var(variable).ok())
    }

    // Split from `from_env` so the empty-value rule is testable without mutating the process
    // environment, which races with other test threads.
    fn from_value(value: Option<String>) -> Option<ApiKey> {
        value
            .filter(|key| !key.trim().is_empty())
            .map(|key| ApiKey { key })
    }

    /// The key itself; call only to build the request header that carries it.
    pub fn expose(&self) -> &str {
        &self.key
    }

    /// `text` with every occurrence of the key replaced by `***`. A key shorter than 8
    /// characters is left alone: such a value is a placeholder (Ollama's
    /// `ollama`), not a secret, and masking it would mangle ordinary words of our own messages
    /// ("no *** token" for a key `first`).
    pub fn redact(&self, text: &str) -> String {
        if self.key.chars().count() < MIN_MASKED_CHARS {
            return text.to_string();
        }
        text.replace(&self.key, MASK)
    }
}

/// The environment variable a provider's key comes from: the configured one, else `default`.
pub(crate) fn key_variable(configured: Option<&str>, default: &str) -> String {
    configured
        .filter(|variable| !variable.trim().is_empty())
        .unwrap_or(default)
        .to_string()
}

/// Runs one attempt with the key, or fails with `missing_api_key` naming `variable` without
/// any network call. Whatever a server sends back may quote what it received, so the key is
/// redacted from every error message.
pub(crate) fn with_api_key<T>(
    api_key: Option<&ApiKey>,
    variable: &str,
    attempt: impl FnOnce(&ApiKey) -> Result<T, AttemptError>,
) -> Result<T, AttemptError> {
    let Some(api_key) = api_key else {
        return Err(AttemptError::new(
            FailureKind::MissingApiKey,
            why_missing(variable, std::env::var_os(variable).as_deref()),
        ));
    };
    attempt(api_key).map_err(|mut error| {
        error.message = api_key.redact(&error.message);
        error
    })
}

/// Why `variable` gave no key, as the operator needs to hear it: a key that is set but empty
/// or not UTF-8 is a different mistake from a forgotten one. Never quotes the value.
fn why_missing(variable: &str, value: Option<&std::ffi::OsStr>) -> String {
    match value.map(|value| value.to_str()) {
        None => format!("{variable} is not set"),
        Some(None) => format!("{variable} is set but is not valid UTF-8"),
        Some(Some(value)) if value.trim().is_empty() => format!("{variable} is set but empty"),
        // Keys are read when the provider is built; one set since then is not seen until reload.
        Some(Some(_)) => format!("{variable} was not set when the provider was built"),
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ApiKey({MASK})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAKE_KEY: &str = "sk-test-SECRET-1234";

    #[test]
    fn an_unset_variable_is_reported_as_not_set() {
        assert_eq!(
            why_missing("OPENAI_API_KEY", None),
            "OPENAI_API_KEY is not set"
        );
    }

    #[test]
    fn a_blank_variable_is_reported_as_empty() {
        let value = std::ffi::OsStr::new("  ");
        assert_eq!(
            why_missing("OPENAI_API_KEY", Some(value)),
            "OPENAI_API_KEY is set but empty"
        );
    }

    #[test]
    fn a_variable_set_after_the_provider_was_built_says_so() {
        let value = std::ffi::OsStr::new("sk-late");
        let reason = why_missing("OPENAI_API_KEY", Some(value));
        assert_eq!(
            reason,
            "OPENAI_API_KEY was not set when the provider was built"
        );
        assert!(!reason.contains("sk-late"));
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_variable_is_reported_as_such_without_its_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let value = std::ffi::OsStr::from_bytes(b"sk-\xff\xfe");
        let reason = why_missing("ANTHROPIC_API_KEY", Some(value));
        assert_eq!(reason, "ANTHROPIC_API_KEY is set but is not valid UTF-8");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = ApiKey::new(FAKE_KEY);
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert!(!format!("{key:#?}").contains(FAKE_KEY));
    }

    #[test]
    fn expose_returns_the_key() {
        assert_eq!(ApiKey::new(FAKE_KEY).expose(), FAKE_KEY);
    }

    #[test]
    fn an_empty_value_counts_as_missing() {
        assert!(ApiKey::from_value(Some(String::new())).is_none());
        assert!(ApiKey::from_value(Some("  ".into())).is_none());
    }

    #[test]
    fn an_unset_value_counts_as_missing() {
        assert!(ApiKey::from_value(None).is_none());
    }

    #[test]
    fn a_present_value_becomes_the_key() {
        let key = ApiKey::from_value(Some(FAKE_KEY.into()));
        assert_eq!(key.as_ref().map(ApiKey::expose), Some(FAKE_KEY));
    }

    #[test]
    fn from_env_reads_a_variable_that_is_set() {
        // Cargo sets CARGO_PKG_NAME for the test process, so nothing has to mutate the environment.
        let key = ApiKey::from_env("CARGO_PKG_NAME");
        assert_eq!(
            key.as_ref().map(ApiKey::expose),
            Some(env!("CARGO_PKG_NAME"))
        );
    }

    #[test]
    fn from_env_treats_an_unset_variable_as_missing() {
        assert!(ApiKey::from_env("PROMPT_CONFIG_TEST_VARIABLE_THAT_IS_NEVER_SET").is_none());
    }

    #[test]
    fn a_placeholder_key_shorter_than_eight_characters_is_not_masked_in_our_own_words() {
        let key = ApiKey::new("first");
        assert_eq!(
            key.redact("no first token within 300 ms"),
            "no first token within 300 ms"
        );
        assert_eq!(ApiKey::new("").redact("text"), "text");
    }

    #[test]
    fn redact_masks_every_occurrence_of_the_key() {
        let key = ApiKey::new(FAKE_KEY);
        let text = format!("bad key {FAKE_KEY}; again {FAKE_KEY}");
        assert_eq!(key.redact(&text), "bad key ***; again ***");
    }
}
