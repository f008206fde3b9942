//! The model providers and the failover client: each HTTP provider against a scripted loopback
//! server, the transport under them, keys, provider kinds, cost estimation, the failover client
//! on mock providers, and the fault matrices of `Engine::complete` and `Engine::stream`. Nothing
//! leaves 127.0.0.1.

#[path = "../support/mod.rs"]
mod support;

mod anthropic;
mod cancel_body;
mod cost;
mod failover;
mod fault_matrix;
mod keys;
mod kinds;
mod openai;
mod stream_anthropic;
mod stream_engine;
mod stream_fault_matrix;
mod stream_openai;
mod stream_transport;
mod structured_anthropic;
mod structured_openai;
mod transport;
