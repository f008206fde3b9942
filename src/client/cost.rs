//! Prices: the cost of a call from `providers.json` prices, the worst case reserved against
//! budgets before a call (estimated prompt tokens, full `max_tokens` of output), and the
//! conservative estimate of a call whose tokens or price are unknown, which is never zero.
//!
//! The estimate rules, applied to each unknown part on its own:
//! - input tokens not reported (or reported as 0): the messages sent (rendered template and
//!   conversation history, tool calls and tool results included) counted with the model's
//!   tokenizer, or the upper bound of [`super::tokens`];
//! - output tokens not reported (or 0 for a non-empty answer): the tokens of the returned text,
//!   refusal and tool calls (names and argument text); when there is none of these (hidden
//!   reasoning), the model's `max_tokens` (else [`DEFAULT_MAX_OUTPUT_TOKENS`]), the worst case
//!   reserved before the call;
//! - a model without a price: the highest price of each kind configured for any model (see
//!   [`highest_pricing`]).

use serde::Serialize;

use super::table::{Prices, ProviderTable};
use super::tokens::{TokenCounter, for_each_text, overhead_tokens};
use super::types::{ProviderResponse, Usage};
use crate::config::{ModelPricing, ModelSpec, ProvidersConfig};
use crate::prompt::Message;

/// Output tokens assumed for the worst case when a model has no `max_tokens`.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 1024;

/// Input price per million tokens assumed when no model has a price at all (the list price of
/// the dearest common model, Claude Opus).
pub const FALLBACK_INPUT_PER_MILLION: f64 = 15.0;

/// Output price per million tokens assumed when no model has a price at all.
pub const FALLBACK_OUTPUT_PER_MILLION: f64 = 75.0;

/// The cost of `usage` in USD. Of the input tokens, cache reads are billed at
/// `cached_input_per_million` and cache writes at `cache_write_per_million` (each defaulting to
/// the input price), the rest at the input price.
#[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
pub fn cost_usd(pricing: &ModelPricing, usage: &Usage) -> f64 {
    Prices::of(pricing).cost_usd(usage)
}

/// The prompt tokens reserved before a call (budgets, token rate limits): four ASCII characters
/// per token, as English prose averages, but one token per UTF-8 byte of every other character,
/// since BPE vocabularies often split non-Latin scripts byte by byte; plus 4 per message and 4
/// per tool call. Every text a provider bills is counted (see [`super::tokens::for_each_text`]):
/// contents, the history's tool calls (ids, names, arguments as JSON) and tool results' ids, so
/// a longer conversation reserves more. The reservation is corrected with the real (or
/// conservatively estimated) usage after the call.
pub fn estimate_prompt_tokens(messages: &[Message]) -> u64 {
    messages
        .iter()
        .map(|message| {
            let mut tokens = overhead_tokens(message);
            for_each_text(message, |text| {
                let ascii = text.bytes().filter(u8::is_ascii).count() as u64;
                tokens += ascii.div_ceil(4) + (text.len() as u64 - ascii);
            });
            tokens
        })
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

/// The price used for a model without one: for each kind of token the highest price any
/// configured model has (a cache price defaults to its model's input price), or the
/// `FALLBACK_*` prices when no model has a price. Never free, and never cheaper than any model
/// the config knows.
pub fn highest_pricing(providers: &ProvidersConfig) -> ModelPricing {
    let models = providers
        .providers
        .values()
        .flat_map(|provider| provider.models.values());
    let mut highest = ModelPricing {
        input_per_million: 0.0,
        output_per_million: 0.0,
        cached_input_per_million: None,
        cache_write_per_million: None,
        context_window: None,
        rate_limit: None,
    };
    let (mut cached, mut written) = (0.0_f64, 0.0_f64);
    for pricing in models {
        highest.input_per_million = highest.input_per_million.max(pricing.input_per_million);
        highest.output_per_million = highest.output_per_million.max(pricing.output_per_million);
        cached = cached.max(
            pricing
                .cached_input_per_million
                .unwrap_or(pricing.input_per_million),
        );
        written = written.max(
            pricing
                .cache_write_per_million
                .unwrap_or(pricing.input_per_million),
        );
    }
    if highest.input_per_million <= 0.0 && highest.output_per_million <= 0.0 {
        highest.input_per_million = FALLBACK_INPUT_PER_MILLION;
        highest.output_per_million = FALLBACK_OUTPUT_PER_MILLION;
        cached = FALLBACK_INPUT_PER_MILLION;
        written = FALLBACK_INPUT_PER_MILLION;
    }
    highest.cached_input_per_million = Some(cached);
    highest.cache_write_per_million = Some(written);
    highest
}

/// The most a call to `model` can cost with a prompt of `prompt_tokens`; a model without a
/// price is reserved at [`highest_pricing`].
pub fn worst_case_usd(providers: &ProviderTable, model: &ModelSpec, prompt_tokens: u64) -> f64 {
    let usage = Usage {
        input_tokens: prompt_tokens,
        output_tokens: max_output_tokens(model),
        ..Usage::default()
    };
    providers
        .prices(model)
        .unwrap_or(&providers.unpriced)
        .cost_usd(&usage)
}

/// A part of a call's cost that had to be estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EstimatedPart {
    /// Input tokens: the provider did not report them; the rendered messages were counted.
    InputTokens,
    /// Output tokens: not reported; the returned text was counted.
    OutputTokens,
    /// Output tokens: not reported and no text to count; `max_tokens` was charged.
    OutputTokensMax,
    /// The model has no price; the highest configured prices were used.
    Price,
}

/// The cost of a successful call, estimated where the provider or the config left gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct CallCost {
    /// The token counts charged: reported where reported, estimated elsewhere.
    pub usage: Usage,
    /// The cost in USD; never zero when anything was estimated.
    pub cost_usd: f64,
    /// What was estimated, empty when every count and price was known.
    pub estimated: Vec<EstimatedPart>,
}

/// The cost of `response` from `model` for `messages`, filling unknown counts and prices by the
/// rules of this module's documentation.
pub fn call_cost(
    providers: &ProviderTable,
    model: &ModelSpec,
    messages: &[Message],
    response: &ProviderResponse,
) -> CallCost {
    let mut usage = response.usage;
    let mut estimated = Vec::new();
    let kind = providers
        .providers
        .get(&model.provider)
        .and_then(|provider| provider.builtin);
    let counter = || TokenCounter::for_model(kind, &model.name);
    // No request has zero input tokens: a 0 is a gateway's placeholder, not a count.
    if !response.usage_reported.input_tokens || usage.input_tokens == 0 {
        let cached = usage.cache_read_input_tokens + usage.cache_creation_input_tokens;
        usage.input_tokens = counter().count_messages(messages).max(cached);
        estimated.push(EstimatedPart::InputTokens);
    }
    // What the model produced: its text, a refusal, and the tool calls it asked for.
    let produced = || {
        let calls = response
            .tool_calls
            .iter()
            .flat_map(|call| [call.name.as_str(), call.arguments.as_str()]);
        [response.text.as_str()]
            .into_iter()
            .chain(response.refusal.as_deref())
            .chain(calls)
    };
    let produced_len: usize = produced().map(str::len).sum();
    if !response.usage_reported.output_tokens || (usage.output_tokens == 0 && produced_len > 0) {
        if produced_len > 0 {
            let counter = counter();
            usage.output_tokens = produced().map(|text| counter.count_text(text)).sum();
            estimated.push(EstimatedPart::OutputTokens);
        } else {
            usage.output_tokens = max_output_tokens(model);
            estimated.push(EstimatedPart::OutputTokensMax);
        }
    }
    let cost_usd = match providers.prices(model) {
        Some(prices) => prices.cost_usd(&usage),
        None => {
            estimated.push(EstimatedPart::Price);
            providers.unpriced.cost_usd(&usage)
        }
    };
    CallCost {
        usage,
        cost_usd,
        estimated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::types::UsageReported;

    fn pricing() -> ModelPricing {
        ModelPricing {
            input_per_million: 2.0,
            output_per_million: 10.0,
            cached_input_per_million: Some(0.5),
            cache_write_per_million: Some(2.5),
            context_window: None,
            rate_limit: None,
        }
    }

    #[test]
    fn cost_adds_uncached_input_cache_reads_cache_writes_and_output_at_their_prices() {
        let usage = Usage {
            input_tokens: 3_400,
            output_tokens: 500,
            cache_read_input_tokens: 2_000,
            cache_creation_input_tokens: 400,
        };
        let expected = (1_000.0 * 2.0 + 2_000.0 * 0.5 + 400.0 * 2.5 + 500.0 * 10.0) / 1e6;
        assert!((cost_usd(&pricing(), &usage) - expected).abs() < 1e-12);
    }

    #[test]
    fn cache_writes_fall_back_to_the_input_price() {
        let mut pricing = pricing();
        pricing.cache_write_per_million = None;
        let usage = Usage {
            input_tokens: 1_000_000,
            cache_creation_input_tokens: 1_000_000,
            ..Usage::default()
        };
        assert!((cost_usd(&pricing, &usage) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn cache_reads_fall_back_to_the_input_price() {
        let mut pricing = pricing();
        pricing.cached_input_per_million = None;
        let usage = Usage {
            input_tokens: 1_000_000,
            cache_read_input_tokens: 1_000_000,
            ..Usage::default()
        };
        assert!((cost_usd(&pricing, &usage) - 2.0).abs() < 1e-12);
    }

    fn table() -> ProviderTable {
        ProviderTable::compile(&providers(), &|_| true, &mut Vec::new())
    }

    fn providers() -> ProvidersConfig {
        serde_json::from_value(serde_json::json!({"providers": {
            "openai": {"kind": "openai", "models": {
                "gpt-4o": {"input_per_million": 2.5, "output_per_million": 10.0},
                "gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}
            }},
            "anthropic": {"kind": "anthropic", "models": {
                "claude": {"input_per_million": 3.0, "output_per_million": 15.0,
                           "cached_input_per_million": 0.3, "cache_write_per_million": 3.75}
            }}
        }}))
        .unwrap()
    }

    fn model(provider: &str, name: &str) -> ModelSpec {
        ModelSpec {
            provider: provider.into(),
            name: name.into(),
            parameters: crate::config::ModelParameters::default(),
        }
    }

    fn answer(text: &str, usage: Usage, reported: UsageReported) -> ProviderResponse {
        ProviderResponse {
            text: text.into(),
            finish_reason: None,
            raw_finish_reason: None,
            refusal: None,
            response_id: None,
            response_model: None,
            usage,
            usage_reported: reported,
            tool_calls: Vec::new(),
        }
    }

    #[test]
    fn the_reservation_counts_every_byte_of_non_latin_text_as_a_token() {
        let message = |content: &str| Message::new(crate::prompt::Role::User, content);
        // 8 ASCII characters: 2 tokens, plus 4 for the message.
        assert_eq!(estimate_prompt_tokens(&[message("abcdefgh")]), 6);
        // Three CJK characters of three bytes each: 9 tokens, not 9 / 4.
        assert_eq!(estimate_prompt_tokens(&[message("日本語")]), 13);
        assert_eq!(estimate_prompt_tokens(&[]), 0);
    }

    fn messages() -> Vec<Message> {
        vec![Message::new(crate::prompt::Role::User, "Name a colour.")]
    }

    #[test]
    fn the_highest_pricing_takes_the_dearest_price_of_each_kind() {
        let highest = highest_pricing(&providers());
        assert_eq!(highest.input_per_million, 3.0);
        assert_eq!(highest.output_per_million, 15.0);
        // gpt-4o has no cache prices, so its input price (2.5) is its cache price.
        assert_eq!(highest.cached_input_per_million, Some(2.5));
        assert_eq!(highest.cache_write_per_million, Some(3.75));
    }

    #[test]
    fn with_no_price_anywhere_the_fallback_prices_apply() {
        let empty: ProvidersConfig =
            serde_json::from_value(serde_json::json!({"providers": {}})).unwrap();
        let highest = highest_pricing(&empty);
        assert_eq!(highest.input_per_million, FALLBACK_INPUT_PER_MILLION);
        assert_eq!(highest.output_per_million, FALLBACK_OUTPUT_PER_MILLION);
    }

    #[test]
    fn a_model_without_a_price_is_charged_the_highest_price_never_zero() {
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            ..Usage::default()
        };
        let cost = call_cost(
            &table(),
            &model("openai", "gpt-unlisted"),
            &messages(),
            &answer("Blue.", usage, UsageReported::ALL),
        );
        assert_eq!(cost.estimated, [EstimatedPart::Price]);
        assert!((cost.cost_usd - 18.0).abs() < 1e-9, "{}", cost.cost_usd);
    }

    #[test]
    fn the_worst_case_of_a_model_without_a_price_is_not_zero() {
        let worst = worst_case_usd(&table(), &model("openai", "gpt-unlisted"), 100);
        let expected = (100.0 * 3.0 + f64::from(DEFAULT_MAX_OUTPUT_TOKENS) * 15.0) / 1e6;
        assert!((worst - expected).abs() < 1e-12);
    }

    #[test]
    fn a_fully_reported_and_priced_call_is_not_estimated() {
        let usage = Usage {
            input_tokens: 10,
            output_tokens: 2,
            ..Usage::default()
        };
        let cost = call_cost(
            &table(),
            &model("openai", "gpt-4o"),
            &messages(),
            &answer("Blue.", usage, UsageReported::ALL),
        );
        assert!(cost.estimated.is_empty());
        assert_eq!(cost.usage, usage);
    }

    #[test]
    fn a_refusal_without_usage_is_charged_its_refusal_text() {
        let mut response = answer("", Usage::default(), UsageReported::default());
        response.refusal = Some("I can't help with that.".into());
        let cost = call_cost(&table(), &model("openai", "gpt-4o"), &messages(), &response);
        assert_eq!(
            cost.estimated,
            [EstimatedPart::InputTokens, EstimatedPart::OutputTokens]
        );
        assert!(cost.usage.output_tokens > 0);
        assert!(cost.usage.output_tokens < u64::from(DEFAULT_MAX_OUTPUT_TOKENS));
    }

    /// The prompt of `messages()` followed by a tool round: the assistant's call and its result.
    fn with_tool_round(arguments: serde_json::Value, result: &str) -> Vec<Message> {
        let mut sent = messages();
        sent.push(Message {
            tool_calls: vec![crate::output::ToolCall {
                id: "call_1".into(),
                name: "palette".into(),
                arguments,
            }],
            ..Message::new(crate::prompt::Role::Assistant, "")
        });
        sent.push(Message::tool_result("call_1", result));
        sent
    }

    #[test]
    fn the_reservation_counts_tool_calls_and_tool_results() {
        let sent = with_tool_round(serde_json::json!({"mood": "calm"}), "teal, sand");
        // Call: "call_1" 2 + "palette" 2 + `{"mood":"calm"}` 4, overheads 4 + 4; result:
        // "teal, sand" 3 + "call_1" 2, overhead 4.
        assert_eq!(
            estimate_prompt_tokens(&sent) - estimate_prompt_tokens(&messages()),
            8 + 8 + 9
        );
    }

    #[test]
    fn the_reservation_grows_with_the_arguments_and_results_of_the_history() {
        let small = with_tool_round(serde_json::json!({"mood": "calm"}), "teal");
        let large = with_tool_round(
            serde_json::json!({"mood": "calm", "notes": "x".repeat(400)}),
            &"teal ".repeat(100),
        );
        assert!(estimate_prompt_tokens(&large) >= estimate_prompt_tokens(&small) + 200);
    }

    #[test]
    fn an_estimated_input_counts_the_history_sent() {
        let unreported = || answer("Blue.", Usage::default(), UsageReported::default());
        let cost =
            |sent: &[Message]| call_cost(&table(), &model("openai", "gpt-4o"), sent, &unreported());
        let plain = cost(&messages());
        let with_history = cost(&with_tool_round(
            serde_json::json!({"mood": "calm"}),
            &"teal ".repeat(50),
        ));
        assert!(with_history.estimated.contains(&EstimatedPart::InputTokens));
        assert!(with_history.usage.input_tokens > plain.usage.input_tokens + 50);
        assert!(with_history.cost_usd > plain.cost_usd);
    }

    #[test]
    fn a_tool_call_answer_without_usage_is_charged_its_call_not_max_tokens() {
        let mut response = answer("", Usage::default(), UsageReported::default());
        response.tool_calls = vec![crate::output::RawToolCall {
            id: "call_1".into(),
            name: "palette".into(),
            arguments: r#"{"mood":"calm"}"#.into(),
        }];
        let cost = call_cost(&table(), &model("openai", "gpt-4o"), &messages(), &response);
        assert!(cost.estimated.contains(&EstimatedPart::OutputTokens));
        assert!(!cost.estimated.contains(&EstimatedPart::OutputTokensMax));
        // "palette" and `{"mood":"calm"}` in o200k_base.
        assert!(
            (2..=10).contains(&cost.usage.output_tokens),
            "{}",
            cost.usage.output_tokens
        );
    }
}
