//! Token counts for when a provider does not report them: the real tokenizer where one exists
//! for the model (OpenAI models through `tiktoken-rs`, whose BPE tables are compiled into the
//! library, so nothing is downloaded at run time), else a documented upper bound that
//! over-estimates on purpose, because an under-counted call is a budget that does not hold.

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use crate::config::ProviderKind;
use crate::prompt::Message;

/// The upper bound for models without a tokenizer here: one token per this many ASCII
/// characters. English prose runs about 4 characters per token and code or digits about 2-3 on
/// current tokenizers, so 2 over-estimates almost everything (about 2x for prose).
pub const ASCII_CHARACTERS_PER_TOKEN: u64 = 2;

/// Tokens added per chat message for its role and separators (OpenAI's own counting recipe
/// uses 3-4; 4 is the larger).
pub const MESSAGE_OVERHEAD_TOKENS: u64 = 4;

/// Tokens that prime the reply after the last message (OpenAI's recipe).
pub const REPLY_PRIMING_TOKENS: u64 = 3;

/// Tokens added per tool call of a history message for its framing (the `type`, `id`,
/// `function` and `name` keys and braces around the texts counted), as a message's overhead.
pub const TOOL_CALL_OVERHEAD_TOKENS: u64 = 4;

/// Calls `each` with every text of `message` a provider receives and bills as input: the
/// content, each tool call's id, name and arguments (as compact JSON), and the `tool_call_id`
/// of a tool result. The role and framing are the overhead constants'.
pub fn for_each_text(message: &Message, mut each: impl FnMut(&str)) {
    each(&message.content);
    for call in &message.tool_calls {
        each(&call.id);
        each(&call.name);
        // Serializing a `Value` to a String cannot fail.
        each(&serde_json::to_string(&call.arguments).unwrap_or_default());
    }
    if let Some(id) = &message.tool_call_id {
        each(id);
    }
}

/// The overhead tokens of `message`: [`MESSAGE_OVERHEAD_TOKENS`] plus
/// [`TOOL_CALL_OVERHEAD_TOKENS`] per tool call.
pub fn overhead_tokens(message: &Message) -> u64 {
    MESSAGE_OVERHEAD_TOKENS + TOOL_CALL_OVERHEAD_TOKENS * message.tool_calls.len() as u64
}

/// How tokens of one model are counted.
#[derive(Clone, Copy)]
pub enum TokenCounter {
    /// The model's own byte-pair encoding.
    Exact(&'static CoreBPE),
    /// [`upper_bound_tokens`], for models without a tokenizer here.
    UpperBound,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            TokenCounter::Exact(_) => "Exact",
            TokenCounter::UpperBound => "UpperBound",
        })
    }
}

impl TokenCounter {
    /// The counter for `model` of a provider of `kind`: OpenAI models tiktoken knows (gpt-4o,
    /// gpt-4.1, o-series: o200k_base; gpt-4, gpt-3.5: cl100k_base) are counted exactly;
    /// everything else, Anthropic and models behind OpenAI-compatible gateways included, by
    /// the upper bound.
    pub fn for_model(kind: Option<ProviderKind>, model: &str) -> TokenCounter {
        if kind != Some(ProviderKind::Openai) {
            return TokenCounter::UpperBound;
        }
        match get_tokenizer(model) {
            Some(Tokenizer::O200kBase) => TokenCounter::Exact(tiktoken_rs::o200k_base_singleton()),
            Some(Tokenizer::Cl100kBase) => {
                TokenCounter::Exact(tiktoken_rs::cl100k_base_singleton())
            }
            _ => TokenCounter::UpperBound,
        }
    }

    /// Whether counts are the model's own.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn is_exact(&self) -> bool {
        matches!(self, TokenCounter::Exact(_))
    }

    /// Tokens of `text`.
    pub fn count_text(&self, text: &str) -> u64 {
        match self {
            TokenCounter::Exact(encoding) => encoding.encode_ordinary(text).len() as u64,
            TokenCounter::UpperBound => upper_bound_tokens(text),
        }
    }

    /// Tokens of the messages sent (the rendered template and the conversation history):
    /// every text of each message ([`for_each_text`]: content, tool calls' ids, names and
    /// arguments, tool results' ids) plus its [`overhead_tokens`], plus
    /// [`REPLY_PRIMING_TOKENS`].
    pub fn count_messages(&self, messages: &[Message]) -> u64 {
        messages
            .iter()
            .map(|message| {
                let mut tokens = overhead_tokens(message);
                for_each_text(message, |text| tokens += self.count_text(text));
                tokens
            })
            .sum::<u64>()
            + REPLY_PRIMING_TOKENS
    }
}

/// An upper estimate of the tokens of `text` for an unknown byte-level BPE tokenizer: one token
/// per [`ASCII_CHARACTERS_PER_TOKEN`] ASCII characters, and one per UTF-8 byte of every other
/// character (a byte-level BPE never needs more tokens than bytes).
pub fn upper_bound_tokens(text: &str) -> u64 {
    let ascii = text.bytes().filter(u8::is_ascii).count() as u64;
    let other_bytes = text.len() as u64 - ascii;
    ascii.div_ceil(ASCII_CHARACTERS_PER_TOKEN) + other_bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upper_bound_counts_two_ascii_characters_per_token_and_every_other_byte() {
        assert_eq!(upper_bound_tokens(""), 0);
        assert_eq!(upper_bound_tokens("abcde"), 3);
        // Three CJK characters of three bytes each.
        assert_eq!(upper_bound_tokens("日本語"), 9);
    }

    #[test]
    fn the_upper_bound_is_above_the_real_count_for_prose() {
        let text = "The quick brown fox jumps over the lazy dog, then naps in the warm sun.";
        let exact = TokenCounter::for_model(Some(ProviderKind::Openai), "gpt-4o").count_text(text);
        assert!(upper_bound_tokens(text) > exact);
    }

    #[test]
    fn openai_models_are_counted_with_their_own_encoding() {
        let counter = TokenCounter::for_model(Some(ProviderKind::Openai), "gpt-4o-mini");
        assert!(counter.is_exact());
        assert_eq!(counter.count_text("Hello world"), 2);
    }

    fn weather_turns() -> Vec<Message> {
        let asking = Message {
            tool_calls: vec![crate::output::ToolCall {
                id: "call_1".into(),
                name: "weather".into(),
                arguments: serde_json::json!({"city": "Paris"}),
            }],
            ..Message::new(crate::prompt::Role::Assistant, "")
        };
        vec![asking, Message::tool_result("call_1", "18C and sunny")]
    }

    #[test]
    fn tool_calls_and_tool_results_are_counted_with_their_ids_names_and_arguments() {
        for counter in [
            TokenCounter::for_model(Some(ProviderKind::Openai), "gpt-4o"),
            TokenCounter::UpperBound,
        ] {
            let turns = weather_turns();
            let texts = [
                "call_1",
                "weather",
                r#"{"city":"Paris"}"#,
                "18C and sunny",
                "call_1",
            ];
            let expected: u64 = texts
                .iter()
                .map(|text| counter.count_text(text))
                .sum::<u64>()
                + 2 * MESSAGE_OVERHEAD_TOKENS
                + TOOL_CALL_OVERHEAD_TOKENS
                + REPLY_PRIMING_TOKENS;
            assert_eq!(counter.count_messages(&turns), expected, "{counter:?}");
        }
    }

    #[test]
    fn a_longer_history_counts_more_tokens() {
        let counter = TokenCounter::for_model(Some(ProviderKind::Openai), "gpt-4o");
        let prompt = vec![Message::new(crate::prompt::Role::User, "Weather in Paris?")];
        let mut with_history = prompt.clone();
        with_history.extend(weather_turns());
        assert!(counter.count_messages(&with_history) > counter.count_messages(&prompt) + 10);
    }

    #[test]
    fn anthropic_and_unknown_models_use_the_bound() {
        assert!(!TokenCounter::for_model(Some(ProviderKind::Anthropic), "claude").is_exact());
        assert!(!TokenCounter::for_model(Some(ProviderKind::Openai), "llama-3-70b").is_exact());
        assert!(!TokenCounter::for_model(None, "gpt-4o").is_exact());
    }
}
