//! Prices: the cost of a call from `providers.json` prices, and the worst case reserved against
//! budgets before a call (estimated prompt tokens, full `max_tokens` of output).

use super::types::Usage;
use crate::config::{ModelPricing, ModelSpec, ProvidersConfig};
use crate::prompt::Message;

/// Output tokens assumed for the worst case when a model has no `max_tokens`.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 1024;

/// The cost of `usage` in USD. Cache reads use the cached-input price (else the input price);
/// cache writes are billed at the input price.
pub fn cost_usd(pricing: &ModelPricing, usage: &Usage) -> f64 {
    let cached_price = pricing
        .cached_input_per_million
        .unwrap_or(pricing.input_per_million);
    let input =
        (usage.input_tokens + usage.cache_creation_input_tokens) as f64 * pricing.input_per_million;
    let cached = usage.cache_read_input_tokens as f64 * cached_price;
    let output = usage.output_tokens as f64 * pricing.output_per_million;
    (input + cached + output) / 1_000_000.0
}

/// A cheap upper estimate of prompt tokens: about four bytes per token plus per-message overhead.
pub fn estimate_prompt_tokens(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|message| (message.content.len() as u64).div_ceil(4) + 4)
        .sum()
}

/// The output tokens a model may produce at most.
pub fn max_output_tokens(model: &ModelSpec) -> u64 {
    u64::from(
        model
            .parameters
            .max_tokens
            .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS),
    )
}

/// The most a call to `model` can cost with a prompt of `prompt_tokens`.
pub fn worst_case_usd(providers: &ProvidersConfig, model: &ModelSpec, prompt_tokens: u64) -> f64 {
    let Some(pricing) = providers
        .providers
        .get(&model.provider)
        .and_then(|provider| provider.models.get(&model.name))
    else {
        return 0.0;
    };
    let usage = Usage {
        input_tokens: prompt_tokens,
        output_tokens: max_output_tokens(model),
        ..Usage::default()
    };
    cost_usd(pricing, &usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pricing() -> ModelPricing {
        ModelPricing {
            input_per_million: 2.0,
            output_per_million: 10.0,
            cached_input_per_million: Some(0.5),
            context_window: None,
            rate_limit: None,
        }
    }

    #[test]
    fn cost_adds_input_cached_and_output_at_their_prices() {
        let usage = Usage {
            input_tokens: 1_000,
            output_tokens: 500,
            cache_read_input_tokens: 2_000,
            cache_creation_input_tokens: 0,
        };
        let expected = (1_000.0 * 2.0 + 2_000.0 * 0.5 + 500.0 * 10.0) / 1e6;
        assert!((cost_usd(&pricing(), &usage) - expected).abs() < 1e-12);
    }

    #[test]
    fn cache_reads_fall_back_to_the_input_price() {
        let mut pricing = pricing();
        pricing.cached_input_per_million = None;
        let usage = Usage {
            cache_read_input_tokens: 1_000_000,
            ..Usage::default()
        };
        assert!((cost_usd(&pricing, &usage) - 2.0).abs() < 1e-12);
    }
}
