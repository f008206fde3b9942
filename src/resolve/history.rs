//! The conversation history a caller passes with a request (`Context::with_messages`): the
//! rules it must follow before it is appended after the rendered template messages, checked at
//! resolve so a history no provider would accept fails here, typed, before a budget is reserved
//! or a token paid for.
//!
//! The rules are the intersection of what both providers accept:
//! - roles are `user`, `assistant` and `tool`; the `system` message is the template's;
//! - `user` and `tool` messages and `assistant` messages without tool calls have text (not
//!   empty, not only whitespace: Anthropic refuses blank text blocks);
//! - only `assistant` turns carry `tool_calls`: ids non-empty and unique in the history, names
//!   of letters, digits, `_` and `-` (1 to 64, the tool name rule of both providers), arguments
//!   a JSON object;
//! - only `tool` messages carry a `tool_call_id`, which answers a call of the latest assistant
//!   turn not answered yet; every call of that turn is answered before the next `user` or
//!   `assistant` message and before the history ends (OpenAI: "an assistant message with
//!   tool_calls must be followed by tool messages responding to each tool_call_id"; Anthropic:
//!   each `tool_use` needs its `tool_result` in the next user turn);
//! - no NUL byte in any text (it cuts strings in C callers, and the prompt hash separates fields
//!   with NUL, so a NUL inside text would let two different histories hash alike);
//! - at most `history.max_messages` messages and `history.max_bytes` bytes (feature settings;
//!   see [`HistorySettings`]).

use std::collections::HashSet;

use serde_json::Value;

use crate::config::HistorySettings;
use crate::prompt::{Message, Role};

/// Why a history was refused: the message at `index` (0-based, in the history, not counting the
/// template's messages), the `field` of it at fault as a JSON pointer into that message (`""`
/// for the message as a whole, `/role`, `/tool_calls/1/id`, ...) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidMessage {
    /// The position of the message in the history.
    pub index: usize,
    /// A JSON pointer into the message: `""`, `/role`, `/content`, `/tool_call_id`,
    /// `/tool_calls/0/arguments`, ...
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl InvalidMessage {
    fn new(index: usize, field: impl Into<String>, message: impl Into<String>) -> InvalidMessage {
        InvalidMessage {
            index,
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The bytes a message counts against `history.max_bytes`: its content, each tool call's id,
/// name and compact JSON arguments, and its `tool_call_id`.
pub fn message_bytes(message: &Message) -> u64 {
    let calls: usize = message
        .tool_calls
        .iter()
        .map(|call| call.id.len() + call.name.len() + json_len(&call.arguments))
        .sum();
    let answered = message.tool_call_id.as_deref().map_or(0, str::len);
    (message.content.len() + calls + answered) as u64
}

/// The length of `value` as compact JSON, without building the text.
fn json_len(value: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut counter, value);
    counter.0
}

/// Checks `messages` against the rules of this module and the feature's `limits`; the first
/// problem found is returned (the limits first, so an oversized history is not walked).
pub fn check(messages: &[Message], limits: &HistorySettings) -> Result<(), InvalidMessage> {
    let max_messages = limits.max_messages as usize;
    if messages.len() > max_messages {
        return Err(InvalidMessage::new(
            max_messages,
            "",
            format!(
                "the history has {} messages; this feature allows at most {max_messages} \
                 (history.max_messages)",
                messages.len()
            ),
        ));
    }
    let mut total: u64 = 0;
    for (index, message) in messages.iter().enumerate() {
        total = total.saturating_add(message_bytes(message));
        if total > limits.max_bytes {
            return Err(InvalidMessage::new(
                index,
                "",
                format!(
                    "the history reaches {total} bytes at this message; this feature allows at \
                     most {} (history.max_bytes)",
                    limits.max_bytes
                ),
            ));
        }
    }
    let mut walk = Walk::default();
    for (index, message) in messages.iter().enumerate() {
        walk.message(index, message)?;
    }
    walk.end()
}

/// What the walk over the history remembers: the ids seen, and the calls of the latest
/// assistant turn still waiting for their results.
#[derive(Default)]
struct Walk<'a> {
    ids: HashSet<&'a str>,
    /// The assistant turn whose calls are being answered, and its unanswered ids in call order.
    pending: Option<(usize, Vec<&'a str>)>,
}

impl<'a> Walk<'a> {
    fn message(&mut self, index: usize, message: &'a Message) -> Result<(), InvalidMessage> {
        let error = |field: &str, text: String| Err(InvalidMessage::new(index, field, text));
        if message.content.contains('\0') {
            return error("/content", "contains a NUL byte".into());
        }
        match message.role {
            Role::User | Role::Assistant => self.all_answered(index)?,
            Role::Tool => {}
            Role::System => {
                return error(
                    "/role",
                    "the system message comes from the prompt template; history messages are \
                     user, assistant or tool turns"
                        .into(),
                );
            }
        }
        if message.role != Role::Assistant && !message.tool_calls.is_empty() {
            return error(
                "/tool_calls",
                format!(
                    "only assistant messages carry tool_calls, not {} messages",
                    message.role.as_str()
                ),
            );
        }
        if message.role != Role::Tool && message.tool_call_id.is_some() {
            return error(
                "/tool_call_id",
                format!(
                    "only tool messages carry a tool_call_id, not {} messages",
                    message.role.as_str()
                ),
            );
        }
        let blank = message.content.trim().is_empty();
        match message.role {
            Role::Assistant if !message.tool_calls.is_empty() => self.calls(index, message),
            Role::Tool => {
                self.result(index, message)?;
                if blank {
                    return error(
                        "/content",
                        "a tool result needs content (for a tool that returned nothing, say \
                         so, e.g. \"{}\" or \"no results\")"
                            .into(),
                    );
                }
                Ok(())
            }
            _ if blank => error(
                "/content",
                format!(
                    "{} messages need content (empty or blank text is allowed only for an \
                     assistant turn with tool_calls)",
                    message.role.as_str()
                ),
            ),
            _ => Ok(()),
        }
    }

    /// An assistant turn with tool calls: each id new and non-empty, each name valid, each
    /// argument set an object. Its ids become the pending ones.
    fn calls(&mut self, index: usize, message: &'a Message) -> Result<(), InvalidMessage> {
        let mut pending = Vec::with_capacity(message.tool_calls.len());
        for (position, call) in message.tool_calls.iter().enumerate() {
            let error = |field: &str, text: String| {
                Err(InvalidMessage::new(
                    index,
                    format!("/tool_calls/{position}/{field}"),
                    text,
                ))
            };
            if call.id.is_empty() {
                return error("id", "a tool call needs a non-empty id".into());
            }
            if call.id.contains('\0') {
                return error("id", "contains a NUL byte".into());
            }
            if !self.ids.insert(&call.id) {
                return error(
                    "id",
                    format!(
                        "tool call id {:?} is used twice in the history (ids are unique)",
                        call.id
                    ),
                );
            }
            if !valid_tool_name(&call.name) {
                return error(
                    "name",
                    format!(
                        "tool name {:?} is not 1 to 64 letters, digits, _ or - (the rule of \
                         both providers)",
                        call.name
                    ),
                );
            }
            if !call.arguments.is_object() {
                return error(
                    "arguments",
                    format!(
                        "tool call arguments must be a JSON object, not {}",
                        json_kind(&call.arguments)
                    ),
                );
            }
            pending.push(call.id.as_str());
        }
        self.pending = Some((index, pending));
        Ok(())
    }

    /// A tool message: its id answers a call of the latest assistant turn not answered yet.
    fn result(&mut self, index: usize, message: &'a Message) -> Result<(), InvalidMessage> {
        let error = |text: String| Err(InvalidMessage::new(index, "/tool_call_id", text));
        let Some(id) = message.tool_call_id.as_deref() else {
            return error("a tool message needs the tool_call_id of the call it answers".into());
        };
        if id.contains('\0') {
            return error("contains a NUL byte".into());
        }
        let Some((_, pending)) = &mut self.pending else {
            return error(format!(
                "tool result {id:?} follows no assistant turn with tool_calls (a tool result \
                 comes right after the assistant turn that asked for it)"
            ));
        };
        match pending.iter().position(|waiting| *waiting == id) {
            Some(position) => {
                pending.remove(position);
                Ok(())
            }
            None if self.ids.contains(id) => error(format!(
                "tool call {id:?} is answered already, or belongs to an earlier assistant turn \
                 (each call has one result, right after its turn)"
            )),
            None => error(format!(
                "tool call {id:?} is not a call of the assistant turn before it"
            )),
        }
    }

    /// Before a user or assistant message and at the end: the previous turn's calls all have
    /// their results.
    fn all_answered(&mut self, next: usize) -> Result<(), InvalidMessage> {
        if let Some((turn, pending)) = self.pending.take()
            && let Some(first) = pending.first()
        {
            let at = if next == usize::MAX { turn } else { next };
            let field = if next == usize::MAX {
                "/tool_calls"
            } else {
                "/role"
            };
            return Err(InvalidMessage::new(
                at,
                field,
                format!(
                    "tool call {first:?} of message {turn} has no result: every tool call of an \
                     assistant turn is answered by a tool message (tool_call_id {first:?}) \
                     before the next user or assistant message{}",
                    if next == usize::MAX {
                        " and before the history ends"
                    } else {
                        ""
                    }
                ),
            ));
        }
        Ok(())
    }

    fn end(mut self) -> Result<(), InvalidMessage> {
        self.all_answered(usize::MAX)
    }
}

/// A tool name both providers accept: `^[a-zA-Z0-9_-]{1,64}$` (OpenAI's function name rule,
/// Anthropic's tool name rule).
fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string (arguments are the parsed object, not its JSON text)",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests;
