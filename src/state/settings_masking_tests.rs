//! Passwords never reach what names the server (errors, telemetry, Debug), wherever the URL
//! carries them; absurdly long settings are refused naming the setting.

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn masked(url: &str) -> String {
    RedisSettings::new(url).unwrap().masked_url()
}

#[test]
fn a_password_in_the_query_is_masked() {
    assert_eq!(
        masked("redis://127.0.0.1:6392/?password=secret2"),
        "redis://127.0.0.1:6392/?password=***"
    );
}

#[test]
fn every_credential_query_parameter_is_masked_but_db_and_protocol_are_shown() {
    let shown = masked("redis://127.0.0.1:6392/?username=app&pass=s3cret&db=2&protocol=resp3");
    assert_eq!(
        shown,
        "redis://127.0.0.1:6392/?username=***&pass=***&db=2&protocol=resp3"
    );
    let unix = masked("redis+unix:///tmp/redis.sock?db=1&pass=s3cret");
    assert_eq!(unix, "redis+unix:///tmp/redis.sock?db=1&pass=***");
}

#[test]
fn an_unknown_query_parameter_hides_its_name_too() {
    let shown = masked("redis://127.0.0.1:6392/?s3cret");
    assert!(!shown.contains("s3cret"), "{shown}");
}

#[test]
fn the_userinfo_password_is_masked_keeping_the_user() {
    assert_eq!(
        masked("redis://:secret@127.0.0.1:6392/"),
        "redis://:***@127.0.0.1:6392/"
    );
    assert_eq!(
        masked("redis://app:p%40ss@127.0.0.1:6392/0"),
        "redis://app:***@127.0.0.1:6392/0"
    );
}

#[test]
fn every_cluster_seed_is_masked() {
    let shown = masked("redis://:one@a:7000/,redis://b:7001/?password=two");
    assert_eq!(shown, "redis://:***@a:7000/,redis://b:7001/?password=***");
}

#[test]
fn the_debug_form_and_connection_errors_mask_a_query_password() {
    let settings = RedisSettings::new("redis://127.0.0.1:1/?password=secret2").unwrap();
    assert!(!format!("{settings:?}").contains("secret2"));
    let state = crate::state::RedisState::new(
        settings.with_timeouts(Duration::from_millis(20), Duration::from_millis(20)),
    )
    .unwrap();
    let error = state.ping().unwrap_err().to_string();
    assert!(error.contains("?password=***"), "{error}");
    assert!(!error.contains("secret2"), "{error}");
}

#[test]
fn a_url_over_4096_bytes_is_refused_naming_the_setting() {
    let url = format!("redis://{}:6379/", "h".repeat(100_000));
    let error = StateBackend::from_json(&json!({"backend": "redis", "url": url}))
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("/state/url:"), "{error}");
    assert!(error.contains("at most 4096"), "{error}");
    assert!(
        error.len() < 200,
        "the URL is not echoed: {} bytes",
        error.len()
    );
}

#[test]
fn a_key_prefix_over_256_bytes_is_refused_naming_the_setting() {
    let prefix = "p".repeat(100_000);
    let error = StateBackend::from_json(
        &json!({"backend": "redis", "url": "redis://h/", "key_prefix": prefix}),
    )
    .unwrap_err()
    .to_string();
    assert!(error.starts_with("/state/key_prefix:"), "{error}");
    assert!(error.contains("at most 256"), "{error}");
    assert!(
        error.len() < 200,
        "the prefix is not echoed: {} bytes",
        error.len()
    );
    let longest = "p".repeat(MAX_KEY_PREFIX_BYTES);
    assert!(
        RedisSettings::new("redis://h/")
            .unwrap()
            .with_key_prefix(&longest)
            .is_ok()
    );
}

/// How a user writes an arbitrary password into the userinfo: percent-encoded.
fn userinfo_encoded(password: &str) -> String {
    url::form_urlencoded::byte_serialize(password.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

proptest! {
    #[test]
    fn no_masked_url_contains_a_password_from_the_userinfo(tail in "[ -~\\p{L}]{1,24}") {
        let password = format!("Pw{tail}");
        let url = format!("redis://app:{}@127.0.0.1:6379/0", userinfo_encoded(&password));
        let settings = RedisSettings::new(&url).unwrap();
        let shown = settings.masked_url();
        prop_assert!(!shown.contains(&password), "{shown}");
        prop_assert!(!shown.contains(&userinfo_encoded(&password)), "{shown}");
        let debug = format!("{:?}", settings);
        prop_assert!(!debug.contains(&password), "{}", debug);
    }

    #[test]
    fn no_masked_url_contains_a_password_from_the_query(
        tail in "[ -~\\p{L}]{1,24}",
        name in "(password|pass|username|user|token)",
    ) {
        let password = format!("Pw{tail}");
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(&name, &password)
            .append_pair("db", "3")
            .finish();
        let url = format!("redis://127.0.0.1:6379/?{query}");
        let settings = RedisSettings::new(&url).unwrap();
        let shown = settings.masked_url();
        let encoded: String = url::form_urlencoded::byte_serialize(password.as_bytes()).collect();
        prop_assert!(!shown.contains(&password), "{shown}");
        prop_assert!(!shown.contains(&encoded), "{shown}");
        prop_assert!(shown.contains("db=3"), "{shown}");
    }
}
