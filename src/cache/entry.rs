//! What the cache stores: the whole answer with its usage, cost and tool calls, and the rule of
//! what may be stored at all. A structured answer's data is not stored: a hit parses it again
//! from the stored text, against the version's output schema.

use serde::{Deserialize, Serialize};

use crate::client::{CacheHit, Completion, FinishReason, Usage};
use crate::config::ModelSpec;
use crate::output::ToolCall;
use crate::resolve::Resolution;

/// One stored answer (serialised as JSON in Redis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedAnswer {
    /// The generated text.
    pub text: String,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered (as configured).
    pub model: String,
    /// The model the provider reported.
    pub response_model: Option<String>,
    /// The provider's response id of the original call.
    pub response_id: Option<String>,
    /// The shared finish reason's name (`stop`, `tool_calls`, `content_filter`, `other`).
    pub finish_reason: Option<String>,
    /// The provider's own word for it.
    pub raw_finish_reason: Option<String>,
    /// Token counts of the original call.
    pub usage: Usage,
    /// What the original call cost in USD: what each hit saves.
    pub cost_usd: f64,
    /// Whether a budget downgrade had replaced the chain for the original call.
    pub downgraded: bool,
    /// The tool calls the model asked for, normalised and valid. Entries stored before tool
    /// calls existed have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// Why an answer was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotCached {
    /// The model declined (`refusal`), or a content filter withheld the answer.
    Refused,
    /// The answer was cut at the output token limit (`length`).
    Truncated,
    /// Some of the cost was estimated: the saving a hit reports would be a guess.
    CostEstimated,
    /// A budget's downgrade policy answered with its cheaper chain: the entry's key names the
    /// version's own chain, which did not answer, and the budget may recover before the TTL.
    Downgraded,
}

impl CachedAnswer {
    /// The stored form of `completion`, or why it must not be stored: refusals (and content
    /// filtering), truncated answers, answers whose cost was estimated and answers of a budget's
    /// downgrade chain never are. Errors (invalid output, refusals and truncation of structured
    /// requests among them) never reach here.
    pub fn of(completion: &Completion) -> Result<CachedAnswer, NotCached> {
        match completion.finish_reason {
            Some(FinishReason::Refusal | FinishReason::ContentFilter) => {
                return Err(NotCached::Refused);
            }
            Some(FinishReason::Length) => return Err(NotCached::Truncated),
            _ => {}
        }
        if completion.refusal.is_some() {
            return Err(NotCached::Refused);
        }
        if completion.cost_estimated {
            return Err(NotCached::CostEstimated);
        }
        if completion.downgraded {
            return Err(NotCached::Downgraded);
        }
        Ok(CachedAnswer {
            text: completion.text.clone(),
            provider: completion.provider.clone(),
            model: completion.model.clone(),
            response_model: completion.response_model.clone(),
            response_id: completion.response_id.clone(),
            finish_reason: completion
                .finish_reason
                .as_ref()
                .map(|reason| reason.as_str().to_string()),
            raw_finish_reason: completion.raw_finish_reason.clone(),
            usage: completion.usage,
            cost_usd: completion.cost_usd,
            downgraded: completion.downgraded,
            tool_calls: completion.tool_calls.clone(),
        })
    }

    /// Bytes this entry holds, roughly (the memory cache's weight).
    pub fn approximate_size(&self) -> usize {
        let text = |value: &Option<String>| value.as_ref().map_or(0, String::len);
        std::mem::size_of::<CachedAnswer>()
            + self.text.len()
            + self.provider.len()
            + self.model.len()
            + text(&self.response_model)
            + text(&self.response_id)
            + text(&self.finish_reason)
            + text(&self.raw_finish_reason)
            + self
                .tool_calls
                .iter()
                .map(|call| call.id.len() + call.name.len() + call.arguments.to_string().len())
                .sum::<usize>()
    }

    /// The completion a hit returns: this answer for `resolution`, cost 0, no attempts, no
    /// repairs, the original cost as the saving, `latency_ms` the lookup's. `data` is the stored
    /// text parsed and validated again when the version declares an output schema (`None` when
    /// it does not, when the answer is tool calls, or when the text no longer validates against a
    /// draft version's edited schema: the engine then treats the entry as a miss).
    pub fn into_completion(
        self,
        resolution: Resolution,
        partition: Option<String>,
        latency_ms: f64,
    ) -> Completion {
        let finish_reason = self.finish_reason.as_deref().map(|name| match name {
            "stop" => FinishReason::Stop,
            "tool_calls" => FinishReason::ToolCalls,
            "length" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "refusal" => FinishReason::Refusal,
            _ => FinishReason::Other(self.raw_finish_reason.clone().unwrap_or_default()),
        });
        let data = match &resolution.output {
            Some(schema) if self.tool_calls.is_empty() => schema.validate(&self.text).ok(),
            _ => None,
        };
        Completion {
            data,
            tool_calls: self.tool_calls,
            repairs: 0,
            text: self.text,
            provider: self.provider,
            model: self.model,
            response_model: self.response_model,
            response_id: self.response_id,
            finish_reason,
            raw_finish_reason: self.raw_finish_reason,
            refusal: None,
            usage: self.usage,
            cost_usd: 0.0,
            cost_estimated: false,
            cost_estimated_parts: Vec::new(),
            latency_ms,
            request_id: resolution.request_id.clone(),
            downgraded: self.downgraded,
            resolution,
            attempts: Vec::new(),
            cache: Some(CacheHit {
                saved_usd: self.cost_usd,
                partition,
            }),
            stream: None,
        }
    }
}

/// Whether a chain may be cached: every model's temperature is 0, unless the settings allow
/// more. An unset temperature is the provider's default (1 for OpenAI and Anthropic), so it
/// counts as above 0.
pub fn temperature_allows(allow_above_zero: bool, model: &ModelSpec, fallbacks: &[ModelSpec]) -> bool {
    allow_above_zero
        || std::iter::once(model)
            .chain(fallbacks)
            .all(|spec| spec.parameters.temperature == Some(0.0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_entry_stored_before_tool_calls_existed_still_reads_without_them() {
        let stored = json!({
            "text": "an answer", "provider": "p", "model": "m",
            "response_model": null, "response_id": null,
            "finish_reason": "stop", "raw_finish_reason": "stop",
            "usage": {"input_tokens": 10, "output_tokens": 2,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
            "cost_usd": 0.001, "downgraded": false
        });
        let entry: CachedAnswer = serde_json::from_value(stored).unwrap();
        assert!(entry.tool_calls.is_empty());
    }

    #[test]
    fn tool_calls_survive_the_stored_form_and_an_entry_without_them_writes_none() {
        let call = ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: json!({"city": "Lyon"}),
        };
        let entry: CachedAnswer = serde_json::from_value(json!({
            "text": "", "provider": "p", "model": "m",
            "response_model": null, "response_id": null,
            "finish_reason": "tool_calls", "raw_finish_reason": "tool_calls",
            "usage": {"input_tokens": 10, "output_tokens": 2,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
            "cost_usd": 0.001, "downgraded": false,
            "tool_calls": [call.clone()]
        }))
        .unwrap();
        let written = serde_json::to_value(&entry).unwrap();
        let read: CachedAnswer = serde_json::from_value(written).unwrap();
        assert_eq!(read.tool_calls, [call]);
        let without = CachedAnswer {
            tool_calls: Vec::new(),
            ..read
        };
        assert!(serde_json::to_value(&without).unwrap().get("tool_calls").is_none());
    }
}
