//! Response cache fixtures: the `ask` feature (tests/support/one_feature.rs) with a `cache`
//! object, served by a scripted provider whose answer a test sets (a refusal, a cut answer,
//! no usage) and which counts its calls, so a test sees whether an answer came from the cache.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use prompt_config::client::Completion;
use prompt_config::client::{
    AttemptError, FinishReason, Provider, ProviderRequest, ProviderResponse, Usage, UsageReported,
};
use prompt_config::state::{RedisSettings, StateBackend};
use prompt_config::{Context, Engine, EngineOptions};
use serde_json::{Value, json};

use super::one_feature::OneFeature;

/// A provider answering with a response the test sets, counting calls.
pub struct Scripted {
    pub response: Mutex<ProviderResponse>,
    pub failing: Mutex<bool>,
    calls: AtomicU64,
}

impl Scripted {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Provider for Scripted {
    fn call(&self, _request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        let number = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if *self.failing.lock() {
            return Err(AttemptError::http(400, "scripted failure"));
        }
        let mut response = self.response.lock().clone();
        response.text = format!("{} #{number}", response.text);
        Ok(response)
    }
}

/// A plain answer: 100 tokens in, 20 out, both reported, `stop`.
pub fn answer(text: &str) -> ProviderResponse {
    ProviderResponse {
        text: text.into(),
        finish_reason: Some(FinishReason::Stop),
        raw_finish_reason: Some("stop".into()),
        refusal: None,
        response_id: Some("resp-1".into()),
        response_model: Some("m-2026".into()),
        usage: Usage {
            input_tokens: 100,
            output_tokens: 20,
            ..Usage::default()
        },
        usage_reported: UsageReported::ALL,
        tool_calls: Vec::new(),
    }
}

/// The `ask` feature with `cache`, `temperature` and a $10 daily budget, served by a [`Scripted`] provider priced
/// at $1/$2 per million tokens.
pub struct CachedFeature {
    pub config: OneFeature,
    pub provider: Arc<Scripted>,
}

impl CachedFeature {
    /// `cache` `null` leaves the feature without one.
    pub fn new(cache: Value, temperature: Option<f64>) -> CachedFeature {
        let providers = json!({"providers": {"p": {
            "kind": "scripted",
            "retry": {"max_attempts": 1},
            "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}
        }}});
        let config = OneFeature::new(&providers, "p", "m");
        let path = config.root.join("config/features/ask.json");
        let mut feature: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if !cache.is_null() {
            feature["cache"] = cache;
        }
        feature["budget"] = json!({"daily_usd": 10});
        if let Some(temperature) = temperature {
            feature["model"]["parameters"] = json!({"temperature": temperature});
        }
        std::fs::write(&path, feature.to_string()).unwrap();
        CachedFeature {
            config,
            provider: Arc::new(Scripted {
                response: Mutex::new(answer("an answer")),
                failing: Mutex::new(false),
                calls: AtomicU64::new(0),
            }),
        }
    }

    /// Options with the scripted provider registered.
    pub fn options(&self) -> EngineOptions {
        let provider = Arc::clone(&self.provider);
        self.config.options().with_provider_kind(
            "scripted",
            move |_setup: &prompt_config::client::ProviderSetup<'_>| -> Arc<dyn Provider> {
                Arc::clone(&provider) as Arc<dyn Provider>
            },
        )
    }

    pub fn engine(&self) -> Engine {
        Engine::open(self.options()).unwrap()
    }

    /// An engine whose state (and so its cache) is the Redis at `url`.
    pub fn engine_on_redis(&self, url: &str) -> Engine {
        Engine::open(self.options().with_state(redis_backend(url))).unwrap()
    }
}

/// The Redis backend at `url` (several comma-separated URLs: a cluster) with patient timeouts.
pub fn redis_backend(url: &str) -> StateBackend {
    let patient = Duration::from_secs(2);
    StateBackend::Redis(
        RedisSettings::new(url)
            .unwrap()
            .with_timeouts(patient, patient),
    )
}

/// Caching for an hour, keyed on the rendered messages.
pub fn hour() -> Value {
    json!({"ttl_seconds": 3600})
}

/// A context asking `question` from `user` in `sector`.
pub fn asking_in(user: &str, question: &str, sector: &str) -> Context {
    Context::new(user)
        .attribute("sector", sector)
        .variable("question", question)
}

/// Whether `completion` came from the cache.
pub fn is_hit(completion: &Completion) -> bool {
    completion.cache.is_some()
}
