//! Provider kinds: a custom provider registered with `EngineOptions::with_provider_kind` serves
//! `complete()`, the mock is registered the same way, an unknown kind is refused at load, and the
//! `openai_compatible` kind reaches servers that speak Chat Completions at another base URL with
//! another key header (Azure OpenAI, Ollama, vLLM, OpenRouter), checked against loopback servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::support::http_server::{Reply, TestServer};
use crate::support::one_feature::{OneFeature, asking};
use crate::support::provider_fixtures::openai_success;
use prompt_config::client::{
    AttemptError, CompleteError, Completion, FinishReason, Provider, ProviderRequest,
    ProviderResponse, ProviderSetup, Usage, UsageReported,
};
use prompt_config::{Engine, Error};
use serde_json::{Value, json};

/// The key every test that sends one reads: cargo sets `CARGO_PKG_NAME` for the test process,
/// so no test mutates the environment.
const KEY_VARIABLE: &str = "CARGO_PKG_NAME";
const KEY: &str = env!("CARGO_PKG_NAME");

/// A provider answering with its configured greeting and the last message, counting calls.
struct Greeter {
    greeting: String,
    calls: Arc<AtomicU64>,
}

impl Provider for Greeter {
    fn call(&self, request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let last = request
            .messages
            .last()
            .map_or("", |message| &message.content);
        Ok(ProviderResponse {
            text: format!("{} {last}", self.greeting),
            finish_reason: Some(FinishReason::Stop),
            raw_finish_reason: Some("done".into()),
            refusal: None,
            response_id: Some("greeter-1".into()),
            response_model: Some(request.model.to_string()),
            usage: Usage {
                input_tokens: 10,
                output_tokens: 5,
                ..Usage::default()
            },
            usage_reported: UsageReported::ALL,
            tool_calls: Vec::new(),
        })
    }
}

/// A factory building a [`Greeter`] from the provider's `options.greeting`.
fn greeter_factory(
    calls: &Arc<AtomicU64>,
) -> impl Fn(&ProviderSetup<'_>) -> Arc<dyn Provider> + Send + Sync + 'static {
    let calls = Arc::clone(calls);
    move |setup: &ProviderSetup<'_>| -> Arc<dyn Provider> {
        let greeting = setup.spec.spec.options.get("greeting");
        Arc::new(Greeter {
            greeting: greeting.and_then(Value::as_str).unwrap_or("hi").to_string(),
            calls: Arc::clone(&calls),
        })
    }
}

fn providers_with(name: &str, entry: Value) -> Value {
    json!({"providers": {name: entry}})
}

fn model(input: f64, output: f64) -> Value {
    json!({"m": {"input_per_million": input, "output_per_million": output}})
}

#[test]
fn a_custom_provider_registered_on_the_options_serves_complete() {
    let calls = Arc::new(AtomicU64::new(0));
    let config = OneFeature::new(
        &providers_with(
            "house",
            json!({"kind": "greeter", "options": {"greeting": "Hello!"}, "models": model(1.0, 2.0)}),
        ),
        "house",
        "m",
    );
    let options = config
        .options()
        .with_provider_kind("greeter", greeter_factory(&calls));
    let engine = Engine::open(options).unwrap();
    let completion = engine.complete("ask", &asking("why?")).unwrap();
    assert_eq!(completion.text, "Hello! Question: why?");
    assert_eq!(completion.provider, "house");
    assert_eq!(completion.raw_finish_reason.as_deref(), Some("done"));
    // Prices come from the compiled table: 10 input at $1/M plus 5 output at $2/M.
    assert!((completion.cost_usd - 20e-6).abs() < 1e-12);
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

#[test]
fn a_custom_kind_serves_as_a_fallback_behind_a_built_in_one() {
    let calls = Arc::new(AtomicU64::new(0));
    let providers = json!({"providers": {
        "down": {"kind": "openai", "base_url": "http://127.0.0.1:9", "api_key_env": "PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET", "models": model(1.0, 1.0)},
        "house": {"kind": "greeter", "models": model(1.0, 1.0)}
    }});
    let config = OneFeature::new(&providers, "down", "m");
    config.write_providers(&providers);
    let feature_path = config.root.join("config/features/ask.json");
    let mut feature: Value =
        serde_json::from_str(&std::fs::read_to_string(&feature_path).unwrap()).unwrap();
    feature["fallbacks"] = json!([{"provider": "house", "name": "m"}]);
    std::fs::write(&feature_path, feature.to_string()).unwrap();
    let engine = Engine::open(
        config
            .options()
            .with_provider_kind("greeter", greeter_factory(&calls)),
    )
    .unwrap();
    let completion = engine.complete("ask", &asking("ok?")).unwrap();
    assert_eq!(completion.provider, "house");
    assert_eq!(
        completion.attempts[0].error_type().as_deref(),
        Some("missing_api_key")
    );
}

#[test]
fn the_mock_is_registered_like_any_kind_so_mock_mode_uses_a_replacement() {
    let calls = Arc::new(AtomicU64::new(0));
    let config = OneFeature::new(
        &providers_with(
            "openai",
            json!({"kind": "openai", "options": {"greeting": "Mocked:"}, "models": model(1.0, 1.0)}),
        ),
        "openai",
        "m",
    );
    let options = config
        .options()
        .with_mock(true)
        .with_provider_kind("mock", greeter_factory(&calls));
    let engine = Engine::open(options).unwrap();
    let completion = engine.complete("ask", &asking("x")).unwrap();
    assert_eq!(completion.text, "Mocked: Question: x");
    // Not the built-in mock, so there is no fault script to reach.
    assert!(engine.mock_provider("openai").is_none());
}

#[test]
fn the_built_in_mock_stays_reachable_for_fault_scripts() {
    let config = OneFeature::new(
        &providers_with("local", json!({"kind": "mock", "models": model(1.0, 1.0)})),
        "local",
        "m",
    );
    let engine = Engine::open(config.options()).unwrap();
    let mock = engine
        .mock_provider("local")
        .expect("the mock of a mock-kind provider");
    engine.complete("ask", &asking("x")).unwrap();
    assert_eq!(mock.calls(), 1);
}

#[test]
fn an_unregistered_kind_is_refused_at_load_naming_its_pointer() {
    let config = OneFeature::new(
        &providers_with(
            "house",
            json!({"kind": "greeter", "models": model(1.0, 1.0)}),
        ),
        "house",
        "m",
    );
    let Err(Error::Config(error)) = Engine::open(config.options()) else {
        panic!("an unknown kind must not load");
    };
    let problem = &error.problems()[0];
    assert_eq!(
        (problem.file.as_str(), problem.pointer.as_str()),
        ("providers.json", "/providers/house/kind")
    );
    assert!(
        problem.message.contains("with_provider_kind"),
        "{}",
        problem.message
    );
}

#[test]
fn a_reload_keeps_the_provider_of_an_equal_entry_and_rebuilds_a_changed_one() {
    let calls = Arc::new(AtomicU64::new(0));
    let builds = Arc::new(AtomicU64::new(0));
    let counting = {
        let builds = Arc::clone(&builds);
        let factory = greeter_factory(&calls);
        move |setup: &ProviderSetup<'_>| -> Arc<dyn Provider> {
            builds.fetch_add(1, Ordering::Relaxed);
            factory(setup)
        }
    };
    let entry = |price: f64| json!({"kind": "greeter", "models": model(price, 1.0)});
    let config = OneFeature::new(&providers_with("house", entry(1.0)), "house", "m");
    let engine = Engine::open(config.options().with_provider_kind("greeter", counting)).unwrap();
    // The same entry written with its keys in another order and spaced differently.
    std::fs::write(
        config.root.join("config/providers.json"),
        r#"{ "providers": { "house": { "models": { "m": { "output_per_million": 1.0, "input_per_million": 1.0 } }, "kind": "greeter" } } }"#,
    )
    .unwrap();
    engine.reload().unwrap();
    assert_eq!(builds.load(Ordering::Relaxed), 1);
    config.write_providers(&providers_with("house", entry(2.0)));
    engine.reload().unwrap();
    assert_eq!(builds.load(Ordering::Relaxed), 2);
}

/// An `openai_compatible` provider at `server` with `extra` settings merged in.
fn compatible(server: &TestServer, path: &str, extra: Value) -> Value {
    let mut entry = json!({
        "kind": "openai_compatible",
        "base_url": format!("{}{path}", server.url()),
        "models": model(0.5, 1.5)
    });
    if let (Some(entry), Value::Object(extra)) = (entry.as_object_mut(), extra) {
        entry.extend(extra);
    }
    entry
}

fn complete_with(providers: Value, provider: &str) -> prompt_config::Result<Completion> {
    let config = OneFeature::new(&providers, provider, "m");
    Engine::open(config.options())?.complete("ask", &asking("hi"))
}

/// The failure of a call that must fail after attempts.
fn failed(result: prompt_config::Result<Completion>) -> CompleteError {
    match result {
        Err(Error::Complete(error)) => error,
        other => panic!("expected a failed call, got {other:?}"),
    }
}

#[test]
fn azure_openai_gets_its_deployment_url_api_key_header_and_api_version() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let entry = compatible(
        &server,
        "/openai/deployments/gpt-4o-prod",
        json!({"api_key_env": KEY_VARIABLE, "auth_header": "api-key", "query": {"api-version": "2024-10-21"}}),
    );
    let completion = complete_with(providers_with("azure", entry), "azure").unwrap();
    assert_eq!(completion.text, "Green.");
    let request = server.single_request();
    assert_eq!(
        request.path,
        "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(request.header("api-key"), Some(KEY));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.json()["model"], "m");
}

#[test]
fn ollama_without_a_key_variable_is_called_without_any_key() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let entry = compatible(&server, "/v1", json!({}));
    let completion = complete_with(providers_with("ollama", entry), "ollama").unwrap();
    assert_eq!(completion.text, "Green.");
    let request = server.single_request();
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("authorization"), None);
}

#[test]
fn an_optional_key_that_is_unset_lets_the_call_go_out_without_it() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let entry = compatible(
        &server,
        "/v1",
        json!({"api_key_env": "PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET", "api_key_required": false}),
    );
    complete_with(providers_with("vllm", entry), "vllm").unwrap();
    assert_eq!(server.single_request().header("authorization"), None);
}

#[test]
fn a_required_key_that_is_unset_fails_without_network_naming_its_variable() {
    let server = TestServer::start(vec![]);
    let entry = compatible(
        &server,
        "/v1",
        json!({"api_key_env": "PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET"}),
    );
    let error = failed(complete_with(providers_with("vllm", entry), "vllm"));
    let attempt = &error.attempts()[0];
    assert_eq!(attempt.error_type().as_deref(), Some("missing_api_key"));
    assert_eq!(
        attempt.message.as_deref(),
        Some("PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET is not set")
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn openrouter_gets_a_bearer_key_and_its_extra_headers() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let entry = compatible(
        &server,
        "/api/v1",
        json!({"api_key_env": KEY_VARIABLE, "headers": {"HTTP-Referer": "https://example.com", "X-Title": "Navigator"}}),
    );
    complete_with(providers_with("openrouter", entry), "openrouter").unwrap();
    let request = server.single_request();
    assert_eq!(request.path, "/api/v1/chat/completions");
    let bearer = format!("Bearer {KEY}");
    assert_eq!(request.header("authorization"), Some(bearer.as_str()));
    assert_eq!(request.header("http-referer"), Some("https://example.com"));
    assert_eq!(request.header("x-title"), Some("Navigator"));
}

#[test]
fn a_compatible_server_error_is_classified_like_openai_s() {
    let server = TestServer::start(vec![
        Reply::json(
            429,
            &json!({"error": {"message": "slow down", "type": "rate_limit_error"}}),
        )
        .header("retry-after-ms", "5"),
        Reply::json(200, &openai_success()),
    ]);
    let entry = compatible(&server, "/v1", json!({}));
    let completion = complete_with(providers_with("local", entry), "local").unwrap();
    assert_eq!(completion.attempts.len(), 2);
    assert_eq!(completion.attempts[0].status, Some(429));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn an_openai_compatible_provider_without_base_url_is_refused_at_load() {
    let providers = providers_with(
        "local",
        json!({"kind": "openai_compatible", "models": model(1.0, 1.0)}),
    );
    let Err(Error::Config(error)) = complete_with(providers, "local") else {
        panic!("a compatible provider needs a base URL");
    };
    assert!(
        error
            .problems()
            .iter()
            .any(|problem| problem.pointer == "/providers/local"
                && problem.message.contains("base_url")),
        "{error}"
    );
}

#[test]
fn an_error_attempt_never_shows_the_key() {
    let server = TestServer::start(vec![Reply::json(
        401,
        &json!({"error": {"message": format!("bad key {KEY}"), "type": "invalid_request_error"}}),
    )]);
    let entry = compatible(
        &server,
        "/v1",
        json!({"api_key_env": KEY_VARIABLE, "auth_header": "api-key"}),
    );
    let error = failed(complete_with(providers_with("azure", entry), "azure"));
    let message = error.attempts()[0].message.clone().unwrap_or_default();
    assert!(
        !message.contains(KEY) && message.contains("***"),
        "{message}"
    );
}

#[test]
fn a_fallback_without_its_key_does_not_cost_the_primary_its_retries() {
    // A 503 then a success: with a callable fallback the client fails over at once, but a
    // fallback whose key is missing could only fail, so the primary is retried instead.
    let server = TestServer::start(vec![
        Reply::json(503, &json!({"error": {"message": "overloaded"}})),
        Reply::json(200, &openai_success()),
    ]);
    let mut primary = compatible(&server, "/v1", json!({"api_key_env": KEY_VARIABLE}));
    primary["retry"] = json!({"max_attempts": 3, "base_delay_ms": 1, "max_delay_ms": 2});
    let keyless = compatible(
        &server,
        "/v1",
        json!({"api_key_env": "PROMPT_CONFIG_TEST_KEY_THAT_IS_NEVER_SET"}),
    );
    let config = OneFeature::new(
        &json!({"providers": {"primary": primary, "keyless": keyless}}),
        "primary",
        "m",
    );
    let feature_file = config.root.join("config/features/ask.json");
    let mut feature: Value =
        serde_json::from_str(&std::fs::read_to_string(&feature_file).unwrap()).unwrap();
    feature["fallbacks"] = json!([{"provider": "keyless", "name": "m"}]);
    std::fs::write(&feature_file, feature.to_string()).unwrap();

    let completion = Engine::open(config.options())
        .unwrap()
        .complete("ask", &asking("hi"))
        .unwrap();
    assert_eq!(completion.provider, "primary");
    assert_eq!(completion.attempts.len(), 2);
    assert_eq!(server.requests().len(), 2);
}
