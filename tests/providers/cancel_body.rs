//! A `CancelToken` cancelled while a whole (non-streamed) reply body is being read: the cancel
//! shuts the socket down, so the body ends early; the short body is the caller's doing, never
//! a provider fault judged as `malformed`, and never counted by the breaker.

use std::thread;
use std::time::Duration;

use crate::support::engine_faults::{
    OPENAI, Setup, TEXT, failure, fault, openai_success, providers, rows, set_keys, state_of,
};
use crate::support::http_server::TestServer;
use prompt_config::client::{BreakerState, CancelToken};
use prompt_config::{Context, ErrorKind};
use serde_json::json;

#[test]
fn a_cancel_while_the_reply_body_is_read_records_the_attempt_as_cancelled_not_malformed() {
    set_keys();
    // Eight bytes every 30 ms: the body takes seconds, and it ends with the connection, so the
    // cancel's shutdown reads as a clean (short) end of body.
    let slow = openai_success()
        .slow_body(Duration::from_millis(30))
        .close_delimited();
    let openai = TestServer::start(vec![slow]);
    let mut config = providers(Some(&openai), None);
    // One counted failure would open the breaker.
    config["providers"]["openai"]["circuit_breaker"]["consecutive_failures"] = json!(1);
    config["providers"]["openai"]["timeout_ms"] = json!(5_000);
    let setup = Setup::new(config, &[OPENAI]);
    let engine = setup.engine();
    let token = CancelToken::new();
    let canceller = {
        let token = token.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(150));
            token.cancel();
        })
    };
    let context = Context::new("user-1").variable("text", TEXT);
    let error = failure(engine.complete_with("summary", &context, &token));
    canceller.join().unwrap();
    assert_eq!(error.kind(), ErrorKind::Cancelled);
    let attempts = error.attempts();
    assert_eq!(rows(attempts), [fault("openai", "cancelled")]);
    assert_eq!(
        attempts[0].message.as_deref(),
        Some("cancelled by the caller")
    );
    assert_eq!(state_of(&engine, "openai"), BreakerState::Closed);
}
