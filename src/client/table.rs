//! The provider table compiled at load, the second phase after `providers.json` is parsed and
//! schema-checked (as features are compiled after theirs): every provider's kind checked against
//! the kinds the engine knows, every model's prices resolved once (a cache price defaults to its
//! model's input price) and the price charged for an unpriced model computed once, so `complete()`
//! only looks a price up in a ready table. Every type here is `PartialEq`: a reload keeps a
//! provider's runtime (breaker, limiters) exactly when its compiled entry is equal.

use std::collections::BTreeMap;

use super::cost::highest_pricing;
use super::types::Usage;
use crate::config::{
    BreakerSettings, BudgetSettings, ClientSettings, ModelPricing, ModelSpec, Problem,
    ProviderKind, ProviderSpec, ProvidersConfig, RateLimitSettings, RetrySettings, pointer_token,
};

/// The file providers are configured in, as problems name it.
const PROVIDERS_FILE: &str = "providers.json";

/// Prices of one model in USD per million tokens, with every default resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Prices {
    /// Per million uncached input tokens.
    pub input_per_million: f64,
    /// Per million output tokens.
    pub output_per_million: f64,
    /// Per million input tokens read from the prompt cache (the input price when unset).
    pub cached_input_per_million: f64,
    /// Per million input tokens written to the prompt cache (the input price when unset).
    pub cache_write_per_million: f64,
}

impl Prices {
    /// The prices of `pricing`, a missing cache price taking the input price.
    pub fn of(pricing: &ModelPricing) -> Prices {
        Prices {
            input_per_million: pricing.input_per_million,
            output_per_million: pricing.output_per_million,
            cached_input_per_million: pricing
                .cached_input_per_million
                .unwrap_or(pricing.input_per_million),
            cache_write_per_million: pricing
                .cache_write_per_million
                .unwrap_or(pricing.input_per_million),
        }
    }

    /// The cost of `usage` in USD: cache reads and writes at their prices, the rest of the
    /// input at the input price, output at the output price.
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        let input = usage.uncached_input_tokens() as f64 * self.input_per_million;
        let cached = usage.cache_read_input_tokens as f64 * self.cached_input_per_million;
        let written = usage.cache_creation_input_tokens as f64 * self.cache_write_per_million;
        let output = usage.output_tokens as f64 * self.output_per_million;
        (input + cached + written + output) / 1_000_000.0
    }
}

/// One model of a compiled provider.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CompiledModel {
    /// Its prices, resolved.
    pub prices: Prices,
    /// Its context window in tokens, when configured.
    pub context_window: Option<u32>,
    /// Its own client-side rate limit.
    pub rate_limit: Option<RateLimitSettings>,
}

/// One provider of the compiled table: what the client needs at call time, typed, plus the
/// parsed `providers.json` entry a provider factory reads its kind-specific settings from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CompiledProvider {
    /// The provider kind name it is built by (`openai`, `openai_compatible`, a registered one).
    pub kind: String,
    /// The built-in kind, when `kind` names one.
    pub builtin: Option<ProviderKind>,
    /// Models by name.
    pub models: BTreeMap<String, CompiledModel>,
    /// The longest one attempt may take, in milliseconds.
    pub timeout_ms: u64,
    /// Retries and backoff.
    pub retry: RetrySettings,
    /// The circuit breaker.
    pub circuit_breaker: BreakerSettings,
    /// The provider-wide client-side rate limit.
    pub rate_limit: Option<RateLimitSettings>,
    /// The entry as parsed (endpoint, key variable, headers, `options` of a custom kind).
    pub spec: ProviderSpec,
}

impl CompiledProvider {
    fn compile(spec: &ProviderSpec) -> CompiledProvider {
        CompiledProvider {
            kind: spec.kind.clone(),
            builtin: ProviderKind::from_name(&spec.kind),
            models: spec
                .models
                .iter()
                .map(|(name, pricing)| {
                    let model = CompiledModel {
                        prices: Prices::of(pricing),
                        context_window: pricing.context_window,
                        rate_limit: pricing.rate_limit.clone(),
                    };
                    (name.clone(), model)
                })
                .collect(),
            timeout_ms: spec.timeout_ms,
            retry: spec.retry.clone(),
            circuit_breaker: spec.circuit_breaker.clone(),
            rate_limit: spec.rate_limit.clone(),
            spec: spec.clone(),
        }
    }
}

/// `providers.json` compiled: providers by name, the client settings, the overall budget and
/// the prices charged for a model without any.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProviderTable {
    /// Providers by name.
    pub providers: BTreeMap<String, CompiledProvider>,
    /// Deadline and all-breakers-open behaviour.
    pub client: ClientSettings,
    /// The overall budget across features.
    pub budget: Option<BudgetSettings>,
    /// For each kind of token, the highest price any model has: what an unpriced model is
    /// charged.
    pub unpriced: Prices,
}

impl ProviderTable {
    /// Compiles `config`, reporting a provider whose kind `is_known_kind` refuses (neither built
    /// in nor registered with `EngineOptions::with_provider_kind`) or whose kind needs a setting
    /// it lacks. The table is complete even when problems were found.
    pub fn compile(
        config: &ProvidersConfig,
        is_known_kind: &dyn Fn(&str) -> bool,
        problems: &mut Vec<Problem>,
    ) -> ProviderTable {
        for (name, spec) in &config.providers {
            let pointer = format!("/providers/{}", pointer_token(name));
            if !is_known_kind(&spec.kind) {
                problems.push(Problem::new(
                    PROVIDERS_FILE,
                    format!("{pointer}/kind"),
                    format!(
                        "unknown provider kind \"{}\": use openai, anthropic, openai_compatible \
                         or mock, or register the kind with EngineOptions::with_provider_kind",
                        spec.kind
                    ),
                ));
            }
            let base_url_missing = spec
                .base_url
                .as_deref()
                .is_none_or(|url| url.trim().is_empty());
            if ProviderKind::from_name(&spec.kind) == Some(ProviderKind::OpenaiCompatible)
                && base_url_missing
            {
                problems.push(Problem::new(
                    PROVIDERS_FILE,
                    pointer,
                    "an openai_compatible provider needs base_url (the URL before \
                     /chat/completions)",
                ));
            }
        }
        ProviderTable {
            providers: config
                .providers
                .iter()
                .map(|(name, spec)| (name.clone(), CompiledProvider::compile(spec)))
                .collect(),
            client: config.client.clone(),
            budget: config.budget.clone(),
            unpriced: Prices::of(&highest_pricing(config)),
        }
    }

    /// The configured prices of `model`, if it has any.
    pub fn prices(&self, model: &ModelSpec) -> Option<&Prices> {
        self.providers
            .get(&model.provider)?
            .models
            .get(&model.name)
            .map(|compiled| &compiled.prices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: serde_json::Value) -> ProvidersConfig {
        serde_json::from_value(json).unwrap()
    }

    fn compile(config: &ProvidersConfig) -> (ProviderTable, Vec<Problem>) {
        let mut problems = Vec::new();
        let table = ProviderTable::compile(config, &|kind| kind != "nope", &mut problems);
        (table, problems)
    }

    #[test]
    fn cache_prices_default_to_the_input_price() {
        let config = config(
            serde_json::json!({"providers": {"p": {"kind": "mock", "models": {
                "m": {"input_per_million": 2.0, "output_per_million": 8.0}
            }}}}),
        );
        let (table, problems) = compile(&config);
        assert!(problems.is_empty());
        let prices = table.providers["p"].models["m"].prices;
        assert_eq!(prices.cached_input_per_million, 2.0);
        assert_eq!(prices.cache_write_per_million, 2.0);
    }

    #[test]
    fn an_unknown_kind_is_a_problem_at_its_pointer() {
        let config =
            config(serde_json::json!({"providers": {"p": {"kind": "nope", "models": {}}}}));
        let (_, problems) = compile(&config);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].pointer, "/providers/p/kind");
    }

    #[test]
    fn an_openai_compatible_provider_without_base_url_is_a_problem() {
        let config = config(
            serde_json::json!({"providers": {"local": {"kind": "openai_compatible", "models": {}}}}),
        );
        let (_, problems) = compile(&config);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("base_url"));
    }

    #[test]
    fn equal_entries_compile_equal_and_a_price_change_does_not() {
        let make = |price: f64| {
            config(
                serde_json::json!({"providers": {"p": {"kind": "openai", "models": {
                    "m": {"input_per_million": price, "output_per_million": 1.0}
                }}}}),
            )
        };
        assert_eq!(compile(&make(1.0)).0, compile(&make(1.0)).0);
        assert_ne!(
            compile(&make(1.0)).0.providers["p"],
            compile(&make(2.0)).0.providers["p"]
        );
    }
}
