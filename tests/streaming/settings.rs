//! `providers.json` → `client.stream`: validated with the file and JSON pointer at fault.

use prompt_config::Engine;
use serde_json::json;

use crate::setup::Setup;

fn open_error(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let setup = Setup::new(edit, |_| {});
    match Engine::open(setup.options()) {
        Ok(_) => panic!("the configuration should be refused"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_zero_first_token_timeout_is_refused_naming_the_file_and_pointer() {
    let message =
        open_error(|providers| providers["client"]["stream"]["first_token_timeout_ms"] = json!(0));
    assert!(message.contains("providers.json"), "{message}");
    assert!(
        message.contains("/client/stream/first_token_timeout_ms"),
        "{message}"
    );
}

#[test]
fn an_absurd_stall_timeout_is_refused_naming_the_file_and_pointer() {
    let message = open_error(|providers| {
        providers["client"]["stream"]["stall_timeout_ms"] = json!(86_400_000)
    });
    assert!(message.contains("providers.json"), "{message}");
    assert!(
        message.contains("/client/stream/stall_timeout_ms"),
        "{message}"
    );
}

#[test]
fn an_unknown_stream_setting_is_refused() {
    let message = open_error(|providers| providers["client"]["stream"]["restart"] = json!(true));
    assert!(message.contains("/client/stream"), "{message}");
}
