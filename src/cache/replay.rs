//! A cached answer served to a streamed call: replayed as a stream of deltas (no provider
//! call), so the caller's code path is the same for a hit and a miss.

use std::time::Instant;

use crate::client::{
    Clock, CompleteError, Completion, Interruption, StreamControl, StreamEvent, StreamStats,
};

/// Bytes per replayed delta, at most (cut at a character boundary, after a space when one is
/// near): close to what providers send per chunk, so a caller's rendering looks the same.
pub const REPLAY_DELTA_BYTES: usize = 24;

/// Hands `completion.text` to `on_event` in deltas of about [`REPLAY_DELTA_BYTES`], then each
/// of its tool calls as one [`StreamEvent::ToolCallDelta`] (id, name and the whole arguments
/// JSON), and returns it with its [`StreamStats`] (time to first token from `started`, the
/// call's start; every event a chunk). A callback returning `Stop` ends the call as `cancelled`
/// with the text replayed so far (nothing charged: a cache hit costs nothing).
pub fn replay(
    mut completion: Completion,
    started: Instant,
    clock: &dyn Clock,
    on_event: &mut dyn FnMut(StreamEvent<'_>) -> StreamControl,
) -> Result<Completion, CompleteError> {
    let mut chunks = 0;
    let mut first_ms = 0.0;
    let mut rest = completion.text.as_str();
    while !rest.is_empty() {
        let cut = delta_end(rest);
        let (delta, tail) = rest.split_at(cut);
        if chunks == 0 {
            first_ms = clock.now().saturating_duration_since(started).as_secs_f64() * 1000.0;
        }
        chunks += 1;
        if on_event(StreamEvent::Delta(delta)) == StreamControl::Stop {
            let sent = completion.text.len() - tail.len();
            return Err(stopped(&completion, completion.text[..sent].to_string(), chunks));
        }
        rest = tail;
    }
    for (index, call) in completion.tool_calls.iter().enumerate() {
        if chunks == 0 {
            first_ms = clock.now().saturating_duration_since(started).as_secs_f64() * 1000.0;
        }
        chunks += 1;
        let arguments = call.arguments.to_string();
        let event = StreamEvent::ToolCallDelta {
            index,
            id: Some(&call.id),
            name: Some(&call.name),
            arguments: &arguments,
        };
        if on_event(event) == StreamControl::Stop {
            return Err(stopped(&completion, completion.text.clone(), chunks));
        }
    }
    completion.stream = Some(StreamStats {
        time_to_first_token_ms: first_ms,
        chunks,
    });
    Ok(completion)
}

/// The `cancelled` error of a replay the callback stopped after `chunks` events, `partial` the
/// text replayed.
fn stopped(completion: &Completion, partial: String, chunks: u64) -> CompleteError {
    CompleteError::Interrupted {
        kind: crate::ErrorKind::Cancelled,
        interruption: Box::new(Interruption::new(
            format!("replay of a cached answer stopped by the callback after {chunks} chunks"),
            partial,
            0.0,
            completion.resolution.request_id.clone(),
            Vec::new(),
        )),
    }
}

/// Where the next delta of `text` ends: at most [`REPLAY_DELTA_BYTES`] bytes, after the last
/// space within them when there is one, always on a character boundary and never empty.
fn delta_end(text: &str) -> usize {
    if text.len() <= REPLAY_DELTA_BYTES {
        return text.len();
    }
    let mut cut = REPLAY_DELTA_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if let Some(space) = text[..cut].rfind(' ')
        && space > 0
    {
        return space + 1;
    }
    if cut == 0 {
        // One character longer than the limit.
        cut = text.char_indices().nth(1).map_or(text.len(), |(index, _)| index);
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_deltas_cut_after_spaces_and_on_character_boundaries() {
        let text = "héllo wörld, this is a rather long cached answer ✓✓✓✓✓✓✓✓✓✓✓✓✓✓";
        let mut rest = text;
        let mut joined = String::new();
        while !rest.is_empty() {
            let cut = delta_end(rest);
            assert!(cut > 0 && cut <= REPLAY_DELTA_BYTES);
            joined.push_str(&rest[..cut]);
            rest = &rest[cut..];
        }
        assert_eq!(joined, text);
    }
}
