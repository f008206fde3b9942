//! API keys and base URLs of both providers: a missing key fails before any network traffic and
//! names its variable, base URLs come from the config, then the environment, then the default, and
//! the key never shows in debug output or errors, even when a server echoes it. Nothing leaves
//! 127.0.0.1.

use std::sync::Arc;

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{
    FAKE_KEY, anthropic, anthropic_error, call, failure, fresh_transport, openai, openai_error,
    spec,
};
use prompt_config::client::{AnthropicProvider, ApiKey, FailureKind, OpenAiProvider};
use serde_json::json;

#[test]
fn a_missing_key_fails_without_network_naming_the_default_variable() {
    let server = TestServer::start(vec![]);
    let transport = fresh_transport();
    let openai =
        OpenAiProvider::with_api_key(&spec("openai", &server.url()), Arc::clone(&transport), None);
    let anthropic =
        AnthropicProvider::with_api_key(&spec("anthropic", &server.url()), transport, None);
    let openai_error = failure(call(&openai));
    let anthropic_error = failure(call(&anthropic));
    assert_eq!(
        (openai_error.kind, openai_error.message.as_str()),
        (FailureKind::MissingApiKey, "OPENAI_API_KEY is not set")
    );
    assert_eq!(
        (anthropic_error.kind, anthropic_error.message.as_str()),
        (FailureKind::MissingApiKey, "ANTHROPIC_API_KEY is not set")
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_missing_key_names_the_configured_variable() {
    let server = TestServer::start(vec![]);
    let mut spec = spec("openai", &server.url());
    spec.api_key_env = Some("PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET".into());
    let error = failure(call(&OpenAiProvider::new(&spec, fresh_transport())));
    assert_eq!(error.kind, FailureKind::MissingApiKey);
    assert_eq!(
        error.message,
        "PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET is not set"
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn base_url_precedence_is_config_then_environment_then_default() {
    assert_eq!(
        OpenAiProvider::choose_base_url(Some("http://gateway/v1/"), Some("http://env/v1")),
        "http://gateway/v1"
    );
    assert_eq!(
        OpenAiProvider::choose_base_url(None, Some("http://env/v1")),
        "http://env/v1"
    );
    assert_eq!(
        OpenAiProvider::choose_base_url(None, Some("")),
        "https://api.openai.com/v1"
    );
    assert_eq!(
        AnthropicProvider::choose_base_url(Some("http://gateway"), Some("http://env")),
        "http://gateway"
    );
    assert_eq!(
        AnthropicProvider::choose_base_url(None, Some("http://env/")),
        "http://env"
    );
    assert_eq!(
        AnthropicProvider::choose_base_url(None, None),
        "https://api.anthropic.com"
    );
}

#[test]
fn a_configured_base_url_is_used_without_its_trailing_slash() {
    let provider =
        OpenAiProvider::new(&spec("openai", "http://127.0.0.1:9/v1/"), fresh_transport());
    assert_eq!(provider.base_url(), "http://127.0.0.1:9/v1");
}

#[test]
fn debug_output_never_shows_the_key() {
    let server = TestServer::start(vec![]);
    let shown = format!(
        "{:?} {:#?} {:?}",
        openai(&server),
        anthropic(&server),
        ApiKey::new(FAKE_KEY)
    );
    assert!(!shown.contains(FAKE_KEY), "{shown}");
    assert!(shown.contains("ApiKey(***)"));
}

#[test]
fn errors_never_show_the_key_even_when_the_server_echoes_it() {
    let echoed = format!("Invalid header: Bearer {FAKE_KEY}");
    let server = TestServer::start(vec![
        Reply::json(
            401,
            &openai_error(&echoed, "invalid_request_error", json!("invalid_api_key")),
        ),
        Reply::json(401, &anthropic_error("authentication_error", &echoed)),
        Reply::text(400, &echoed),
        Reply::json(200, &json!({"choices": echoed})),
    ]);
    let errors = [
        call(&openai(&server)),
        call(&anthropic(&server)),
        call(&openai(&server)),
        call(&openai(&server)),
    ]
    .map(failure);
    for error in errors {
        let shown = format!(
            "{error} {error:?} {}",
            serde_json::to_string(&error).unwrap()
        );
        assert!(!shown.contains(FAKE_KEY), "{shown}");
        assert!(error.message.contains("***"), "{}", error.message);
    }
}

#[test]
fn a_key_that_cannot_be_a_header_value_fails_without_revealing_it() {
    let server = TestServer::start(vec![]);
    let broken_key = format!("{FAKE_KEY}\nx-injected: 1");
    let provider = OpenAiProvider::with_api_key(
        &spec("openai", &server.url()),
        fresh_transport(),
        Some(ApiKey::new(broken_key)),
    );
    let error = failure(call(&provider));
    assert_eq!(error.kind, FailureKind::Connect);
    assert!(!format!("{error} {error:?}").contains(FAKE_KEY));
    assert_eq!(server.connections(), 0);
}
