//! Structured output, conversation history and tool calls, end to end through the engine on
//! loopback OpenAI and Anthropic servers and the mock provider: answers validated against the
//! version's output schema, repaired or failed over; refusals and truncation as their own
//! errors; history validated and translated per provider; multi-turn tool loops.

#[path = "../support/mod.rs"]
mod support;

// H1a: validation, repair, failover, refusal and truncation, streams and the cache.
mod failover;
mod refusal;
mod repair;
mod schema_fixtures;
mod streamed;
mod tools;
mod validation;

// H3: conversation history through the engine (rules, limits, budgets, telemetry).
mod history;

// H4: the mock provider's structured answers and tool calls.
mod mock;

// Multi-turn tool loops on both providers and across a failover.
mod tool_loop;
