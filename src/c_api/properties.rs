//! Property tests of the C ABI's JSON out (issue 9): whatever text or JSON crosses the
//! boundary (empty strings, arrays and objects, NUL bytes, non-BMP characters, very long
//! strings, nesting), every string the library hands to C is NUL-terminated UTF-8 JSON with no
//! interior NUL that parses back to what was meant, in results and in errors and their
//! details, and no export panics. The exports are called as C calls them.

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::boundary::{Out, into_c_string};
use super::*;

/// Text that C strings and JSON find hard: NUL bytes, non-BMP characters, combining marks,
/// escapes, and long runs.
pub(super) fn awkward_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        4 => prop::collection::vec(any::<char>(), 0..16).prop_map(String::from_iter),
        2 => prop::sample::select(vec![
            "\0", "a\0b", "\u{1F600}", "\u{10FFFF}", "e\u{301}", "\u{FEFF}", "\u{200F}",
            "\u{1F469}\u{200D}\u{1F4BB}", "\\u0000", "\"", "\n", "{{ goals }}", "{% raw %}",
        ])
        .prop_map(str::to_string),
        1 => (1usize..50_000, any::<char>()).prop_map(|(count, c)| c.to_string().repeat(count)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("a JSON number is finite", |number| {
            serde_json::Number::from_f64(number).map(Value::Number)
        }),
        awkward_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((awkward_text(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A string from the library: NUL-terminated, with no interior NUL, valid UTF-8. Freed.
fn take(pointer: *mut c_char) -> String {
    assert!(!pointer.is_null(), "a string was handed out");
    // SAFETY: a string from the library, freed once right after.
    let text = unsafe { CStr::from_ptr(pointer) }
        .to_str()
        .expect("UTF-8")
        .to_string();
    unsafe { pc_string_free(pointer) };
    text
}

fn take_json(pointer: *mut c_char) -> Value {
    let text = take(pointer);
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{error}: {text:.200}"))
}

/// The error JSON, checked for its shape.
fn take_error(pointer: *mut c_char) -> Value {
    let error = take_json(pointer);
    assert!(error["kind"].is_string(), "{error}");
    assert!(error["message"].is_string(), "{error}");
    assert!(error.get("details").is_some(), "{error}");
    error
}

/// One engine on the shipped configuration with mock providers, shared by every case.
struct Shared(*mut pc_engine);

// SAFETY: `pc_engine` is Send + Sync (checked in mod.rs); the handle is never closed.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn engine() -> *const pc_engine {
    static ENGINE: OnceLock<Shared> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let root = env!("CARGO_MANIFEST_DIR");
            let options = CString::new(
                json!({
                    "config_dir": format!("{root}/config"),
                    "prompts_dir": format!("{root}/prompts"),
                    "mock": true,
                })
                .to_string(),
            )
            .expect("no NUL");
            let (mut engine, mut error) = (ptr::null_mut(), ptr::null_mut());
            let status = unsafe { pc_engine_open(options.as_ptr(), &mut engine, &mut error) };
            assert_eq!(status, pc_status::PC_OK);
            Shared(engine)
        })
        .0
}

fn profile(goals: &str) -> Value {
    json!({
        "current_role": "Data Analyst",
        "degree": "",
        "skills": [],
        "sector": "technology",
        "goals": goals,
    })
}

/// `pc_resolve` as C calls it: the result JSON or (status, error JSON).
fn resolve(feature: &CStr, request: &Value) -> Result<Value, (pc_status, Value)> {
    let request = CString::new(request.to_string()).expect("JSON text has no NUL");
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_resolve(
            engine(),
            feature.as_ptr(),
            request.as_ptr(),
            &mut out,
            &mut error,
        )
    };
    if status == pc_status::PC_OK {
        assert!(error.is_null());
        Ok(take_json(out))
    } else {
        assert!(out.is_null());
        Err((status, take_error(error)))
    }
}

const FEATURE: &CStr = c"career_path_navigator";

// --- Regression examples -----------------------------------------------------------------------

#[test]
fn an_empty_feature_name_is_unknown_feature_with_the_empty_name_in_details() {
    let (status, error) = resolve(c"", &json!({"user_id": 1})).expect_err("unknown");
    assert_eq!(status, pc_status::PC_UNKNOWN_FEATURE);
    assert_eq!(error["details"]["feature"], "");
}

#[test]
fn a_missing_config_dir_is_a_config_error_with_its_path() {
    let options = CString::new(r#"{"config_dir": "/nonexistent/x", "prompts_dir": ""}"#).unwrap();
    let (mut engine, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe { pc_engine_open(options.as_ptr(), &mut engine, &mut error) };
    assert_eq!(status, pc_status::PC_CONFIG_INVALID);
    assert!(engine.is_null());
    let error = take_error(error);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/x"),
        "{error}"
    );
}

/// What `pc_complete` hands C for a structured answer with tool calls: the completion JSON's
/// `data` is the parsed value, `tool_calls` `[{"id", "name", "arguments": {...}}]` (arguments an
/// object, not JSON text), `repairs` a number. Built from a real mock completion, written by
/// the same `Out::set_json` the export uses.
#[test]
fn the_completion_json_carries_data_tool_calls_and_repairs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let options = crate::EngineOptions::new(format!("{root}/config"), format!("{root}/prompts"))
        .with_mock(true);
    let engine = crate::Engine::open(options).expect("the shipped config opens");
    let request = json!({"user_id": 7, "variables": profile("data"), "version": "1.0.0"});
    let context: crate::Context = serde_json::from_value(request).expect("a context");
    let mut completion = engine
        .complete("career_path_navigator", &context)
        .expect("the mock answers");
    completion.data = Some(json!({"career_paths": [{"title": "Analyst", "why": "\u{0}"}]}));
    completion.tool_calls = vec![crate::output::ToolCall {
        id: "call_1".into(),
        name: "salary_lookup".into(),
        arguments: json!({"role": "analyst"}),
    }];
    completion.repairs = 2;
    let mut pointer: *mut c_char = ptr::null_mut();
    let out = unsafe { Out::new(&mut pointer, "result_json") }.expect("not NULL");
    out.set_json(&completion).expect("serializes");
    let handed = take_json(pointer);
    assert_eq!(handed["data"], completion.data.clone().unwrap());
    assert_eq!(
        handed["tool_calls"],
        json!([{"id": "call_1", "name": "salary_lookup", "arguments": {"role": "analyst"}}])
    );
    assert_eq!(handed["repairs"], 2);
}

#[test]
fn a_nul_byte_in_a_handed_out_string_becomes_a_replacement_character() {
    let text = take(into_c_string("a\0b\0".to_string()));
    assert_eq!(text, "a\u{FFFD}b\u{FFFD}");
}

// --- Properties ----------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_json_value_is_handed_out_as_json_that_parses_back(value in json_value()) {
        let mut pointer: *mut c_char = ptr::null_mut();
        let out = unsafe { Out::new(&mut pointer, "result_json") }.expect("not NULL");
        out.set_json(&value).expect("serializes");
        prop_assert_eq!(take_json(pointer), value);
    }

    #[test]
    fn any_text_is_handed_out_whole(text in awkward_text()) {
        prop_assert_eq!(take(into_c_string(text.clone())), text.replace('\0', "\u{FFFD}"));
    }

    #[test]
    fn any_variable_text_comes_back_intact_in_the_resolution(goals in awkward_text()) {
        let request = json!({"user_id": 7, "variables": profile(&goals), "version": "1.0.0"});
        let resolution = resolve(FEATURE, &request).expect("resolves");
        let user = resolution["messages"][1]["content"].as_str().expect("the user message");
        prop_assert!(user.contains(&format!("Goals: {goals}")), "{user:.200}");
        prop_assert!(user.contains("Degree: \n"));
    }

    #[test]
    fn any_feature_name_is_an_unknown_feature_naming_it(name in awkward_text()) {
        let name = name.replace('\0', "");
        prop_assume!(name != "career_path_navigator");
        let feature = CString::new(name.clone()).expect("NULs removed");
        let (status, error) = resolve(&feature, &json!({"user_id": 1})).expect_err("unknown");
        prop_assert_eq!(status, pc_status::PC_UNKNOWN_FEATURE);
        prop_assert_eq!(&error["details"]["feature"], &Value::String(name));
    }

    #[test]
    fn any_request_json_gets_a_resolution_or_a_well_formed_error(request in json_value()) {
        match resolve(FEATURE, &request) {
            Ok(resolution) => prop_assert_eq!(&resolution["feature"], "career_path_navigator"),
            Err((status, _error)) => prop_assert_ne!(status, pc_status::PC_PANIC),
        }
    }

    /// Conversation history (issue 13): any text as a user turn and as a tool result comes
    /// back intact at the end of the resolution's messages, or is refused as
    /// `PC_INVALID_MESSAGES`: at the message's `/content` when it is blank or holds a NUL, at
    /// the whole message when the history passes the default 256 KiB.
    #[test]
    fn any_history_text_comes_back_intact_or_is_invalid_messages(
        asked in awkward_text(),
        result in awkward_text(),
    ) {
        let history = json!([
            {"role": "user", "content": asked},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "name": "lookup", "arguments": {"query": "q"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": result},
        ]);
        let request = json!({"user_id": 7, "variables": profile(""), "version": "1.0.0",
                             "messages": history});
        let unusable = |text: &str| text.trim().is_empty() || text.contains('\0');
        // The call's id, name and `{"query":"q"}`, and the result's tool_call_id.
        let oversized = asked.len() + result.len() + 31 > 262_144;
        match resolve(FEATURE, &request) {
            Ok(resolution) => {
                prop_assert!(!unusable(&asked) && !unusable(&result) && !oversized);
                let messages = resolution["messages"].as_array().expect("messages");
                prop_assert_eq!(&Value::Array(messages[messages.len() - 3..].to_vec()), &history);
            }
            Err((status, error)) => {
                prop_assert_eq!(status, pc_status::PC_INVALID_MESSAGES);
                if oversized {
                    prop_assert_eq!(&error["details"]["field"], "");
                } else {
                    let index = if unusable(&asked) { 0 } else { 2 };
                    prop_assert!(unusable(&asked) || unusable(&result));
                    prop_assert_eq!(&error["details"]["index"], index);
                    prop_assert_eq!(&error["details"]["field"], "/content");
                }
            }
        }
    }

    /// Any JSON value as `messages` (or as one message) gets a resolution or a well-formed
    /// error, never a panic: a wrong shape is `PC_INVALID_ARGUMENT`.
    #[test]
    fn any_messages_value_gets_a_resolution_or_a_well_formed_error(
        messages in json_value(),
        message in json_value(),
    ) {
        for messages in [messages, json!([message])] {
            let request = json!({"user_id": 1, "variables": profile(""), "messages": messages});
            if let Err((status, error)) = resolve(FEATURE, &request) {
                prop_assert!(
                    status == pc_status::PC_INVALID_ARGUMENT
                        || status == pc_status::PC_INVALID_MESSAGES,
                    "{error}"
                );
            }
        }
    }

    #[test]
    fn any_user_id_and_attributes_get_a_resolution_or_a_well_formed_error(
        user_id in json_value(),
        attributes in prop::collection::vec((awkward_text(), json_value()), 0..4),
    ) {
        let attributes: Map<String, Value> = attributes.into_iter().collect();
        let request = json!({"user_id": user_id, "attributes": attributes, "variables": profile("")});
        if let Err((status, _error)) = resolve(FEATURE, &request) {
            prop_assert_ne!(status, pc_status::PC_PANIC);
        }
    }
}

#[test]
fn deeply_nested_json_is_handed_out_as_json_that_parses_back() {
    // As deep as serde_json's parser reads back (its limit is 128).
    let mut value = json!("");
    for depth in 0..120 {
        value = if depth % 2 == 0 {
            json!([value])
        } else {
            json!({ "": value })
        };
    }
    let mut pointer: *mut c_char = ptr::null_mut();
    let out = unsafe { Out::new(&mut pointer, "result_json") }.expect("not NULL");
    out.set_json(&value).expect("serializes");
    assert_eq!(take_json(pointer), value);
}

#[test]
fn metrics_json_parses_after_awkward_requests() {
    for goals in ["", "\0", "\u{1F600}"] {
        let request = json!({"user_id": goals, "variables": profile(goals), "version": "1.0.0"});
        let _ = resolve(FEATURE, &request);
    }
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe { pc_metrics_json(engine(), &mut out, &mut error) };
    assert_eq!(status, pc_status::PC_OK);
    assert!(take_json(out).is_object());
}
