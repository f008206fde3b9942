//! `pc_stream`, `pc_stream_with`, `pc_complete_with` and the cancel token, called from Rust as C
//! would call them, on the mock provider.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::boundary::test_hook;
use super::tests::{FEATURE, open, request, take, take_error, take_json};
use super::*;

/// What the collecting callback saw.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) deltas: Vec<String>,
    restarts: usize,
    /// Stop (return non-zero) once this many deltas arrived.
    stop_after: Option<usize>,
    /// Whether every delta was followed by a NUL byte.
    nul_terminated: bool,
}

pub(super) unsafe extern "C" fn collect(
    delta: *const c_char,
    len: usize,
    user: *mut c_void,
) -> c_int {
    // SAFETY: `user` is the `Seen` the test passed; `delta` is `len` bytes plus a NUL.
    let seen = unsafe { &mut *user.cast::<Seen>() };
    if delta.is_null() {
        seen.restarts += 1;
        seen.deltas.clear();
        return 0;
    }
    let bytes = unsafe { std::slice::from_raw_parts(delta.cast::<u8>(), len + 1) };
    seen.nul_terminated = bytes[len] == 0 && (seen.deltas.is_empty() || seen.nul_terminated);
    seen.deltas
        .push(String::from_utf8(bytes[..len].to_vec()).expect("deltas are UTF-8"));
    c_int::from(seen.stop_after == Some(seen.deltas.len()))
}

/// Streams the shipped feature into `seen`; the status and the result or error JSON.
fn stream(engine: *mut pc_engine, seen: &mut Seen) -> (pc_status, Value) {
    let request = request();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_stream(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            Some(collect),
            ptr::from_mut(seen).cast(),
            &mut out,
            &mut error,
        )
    };
    if status == pc_status::PC_OK {
        assert!(error.is_null());
        (status, take_json(out))
    } else {
        assert!(out.is_null());
        (status, take_error(error))
    }
}

fn new_token() -> *mut pc_cancel_token {
    let (mut token, mut error) = (ptr::null_mut(), ptr::null_mut());
    assert_eq!(
        unsafe { pc_cancel_token_new(&mut token, &mut error) },
        pc_status::PC_OK
    );
    assert!(error.is_null() && !token.is_null());
    token
}

#[test]
fn the_deltas_joined_are_the_completion_text() {
    let engine = open(true);
    let mut seen = Seen::default();
    let (status, completion) = stream(engine, &mut seen);
    assert_eq!(status, pc_status::PC_OK, "{completion}");
    assert!(!seen.deltas.is_empty());
    assert!(seen.nul_terminated, "every delta is followed by a NUL");
    assert_eq!(seen.deltas.concat(), completion["text"].as_str().unwrap());
    assert_eq!(completion["resolution"]["feature"], "career_path_navigator");
    unsafe { pc_engine_close(engine) };
}

#[test]
fn the_completion_json_carries_the_stream_object() {
    let engine = open(true);
    let (status, completion) = stream(engine, &mut Seen::default());
    assert_eq!(status, pc_status::PC_OK, "{completion}");
    let stream = &completion["stream"];
    assert!(
        stream["chunks"].as_u64().is_some_and(|n| n >= 1),
        "{completion}"
    );
    assert!(stream["time_to_first_token_ms"].is_number(), "{completion}");
    unsafe { pc_engine_close(engine) };
}

#[test]
fn a_callback_returning_non_zero_stops_the_stream_as_cancelled_with_the_partial_text() {
    let engine = open(true);
    let mut seen = Seen {
        stop_after: Some(1),
        ..Seen::default()
    };
    let (status, error) = stream(engine, &mut seen);
    assert_eq!(status, pc_status::PC_CANCELLED, "{error}");
    assert_eq!(error["kind"], "cancelled");
    assert_eq!(seen.deltas.len(), 1, "no delta after the stop");
    assert_eq!(error["details"]["partial_text"], seen.deltas[0].as_str());
    unsafe { pc_engine_close(engine) };
}

#[test]
fn a_null_callback_is_an_invalid_argument_naming_callback() {
    let engine = open(true);
    let request = request();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_stream(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            None,
            ptr::null_mut(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert!(out.is_null());
    let error = take_error(error);
    assert_eq!(error["details"]["argument"], "callback");
    assert_eq!(error["details"]["reason"], "null");
    unsafe { pc_engine_close(engine) };
}

#[test]
fn every_null_pointer_argument_of_pc_stream_is_named() {
    let engine = open(true);
    let request = request();
    let mut out = ptr::null_mut();
    let cases: [(&str, *const pc_engine, *const c_char, *const c_char, bool); 4] = [
        (
            "engine",
            ptr::null(),
            FEATURE.as_ptr(),
            request.as_ptr(),
            true,
        ),
        ("feature", engine, ptr::null(), request.as_ptr(), true),
        ("request_json", engine, FEATURE.as_ptr(), ptr::null(), true),
        (
            "result_json",
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            false,
        ),
    ];
    for (argument, handle, feature, request_json, with_out) in cases {
        let mut error = ptr::null_mut();
        let out_pointer: *mut *mut c_char = if with_out { &mut out } else { ptr::null_mut() };
        let status = unsafe {
            pc_stream(
                handle,
                feature,
                request_json,
                Some(collect),
                ptr::null_mut(),
                out_pointer,
                &mut error,
            )
        };
        assert_eq!(status, pc_status::PC_INVALID_ARGUMENT, "{argument}");
        assert!(out.is_null(), "{argument}");
        let error = take_error(error);
        assert_eq!(error["details"]["argument"], argument);
        assert_eq!(error["details"]["reason"], "null");
    }
    unsafe { pc_engine_close(engine) };
}

#[test]
fn bad_request_json_is_an_invalid_argument_and_the_callback_never_runs() {
    let engine = open(true);
    let mut seen = Seen::default();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_stream(
            engine,
            FEATURE.as_ptr(),
            c"{\"user_id\": ".as_ptr(),
            Some(collect),
            ptr::from_mut(&mut seen).cast(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    let error = take_error(error);
    assert_eq!(error["details"]["argument"], "request_json");
    assert_eq!(error["details"]["reason"], "invalid_json");
    assert!(seen.deltas.is_empty());
    unsafe { pc_engine_close(engine) };
}

#[test]
fn a_core_error_before_the_stream_is_its_own_status() {
    let engine = open(true);
    let request = request();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_stream(
            engine,
            c"no_such_feature".as_ptr(),
            request.as_ptr(),
            Some(collect),
            ptr::from_mut(&mut Seen::default()).cast(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_UNKNOWN_FEATURE);
    assert_eq!(take_error(error)["kind"], "unknown_feature");
    unsafe { pc_engine_close(engine) };
}

#[test]
fn a_null_cancel_token_is_an_invalid_argument_naming_cancel() {
    let engine = open(true);
    let request = request();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_complete_with(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            ptr::null(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert_eq!(take_error(error)["details"]["argument"], "cancel");
    let status = unsafe {
        pc_stream_with(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            ptr::null(),
            Some(collect),
            ptr::null_mut(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert_eq!(take_error(error)["details"]["argument"], "cancel");
    assert_eq!(
        unsafe { pc_cancel(ptr::null()) },
        pc_status::PC_INVALID_ARGUMENT
    );
    assert_eq!(
        unsafe { pc_cancel_token_new(ptr::null_mut(), &mut error) },
        pc_status::PC_INVALID_ARGUMENT
    );
    assert_eq!(take_error(error)["details"]["argument"], "token");
    unsafe { pc_cancel_token_free(ptr::null_mut()) };
    unsafe { pc_engine_close(engine) };
}

#[test]
fn complete_with_a_token_not_cancelled_completes() {
    let engine = open(true);
    let token = new_token();
    let request = request();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_complete_with(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            token,
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_OK);
    assert!(!take_json(out)["text"].as_str().unwrap().is_empty());
    unsafe { pc_cancel_token_free(token) };
    unsafe { pc_engine_close(engine) };
}

/// The pointer of a token, sent to another thread (it is `Send + Sync` behind the handle).
struct SendToken(*const pc_cancel_token);
unsafe impl Send for SendToken {}

/// A configuration in a fresh temporary folder (removed by the caller) whose feature `ask`
/// calls one keyless `openai_compatible` provider at `base_url`.
fn loopback_config(base_url: &str) -> std::path::PathBuf {
    config_with_provider(serde_json::json!({
        "kind": "openai_compatible", "base_url": base_url,
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}}))
}

/// A configuration in a fresh temporary folder (removed by the caller) whose feature `ask`
/// renders `Question: {{ question }}` and calls model `m` of the one provider `provider`.
pub(super) fn config_with_provider(provider: Value) -> std::path::PathBuf {
    let template = "Question: {{ question }}";
    let root = std::env::temp_dir().join(format!(
        "pc_c_api_stream_{}_{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("config/features")).unwrap();
    std::fs::create_dir_all(root.join("prompts/ask/1.0.0")).unwrap();
    std::fs::write(root.join("prompts/ask/1.0.0/user.j2"), template).unwrap();
    let providers = serde_json::json!({"providers": {"local": provider}});
    std::fs::write(root.join("config/providers.json"), providers.to_string()).unwrap();
    let feature = serde_json::json!({
        "feature": "ask", "active_version": "1.0.0",
        "model": {"provider": "local", "name": "m"},
        "versions": {"1.0.0": {
            "status": "released",
            "sha256": {"user.j2": crate::prompt::sha256_hex(template.as_bytes())},
            "messages": [{"role": "user", "template": "user.j2"}],
            "variables": {"type": "object", "properties": {"question": {"type": "string"}}}
        }}
    });
    std::fs::write(root.join("config/features/ask.json"), feature.to_string()).unwrap();
    root
}

#[test]
fn a_cancel_from_another_thread_ends_complete_with_and_closes_the_connection_at_once() {
    use std::io::Read;
    // A server that accepts, reads the request and never answers; it reports when the client
    // closed the connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut buffer = [0u8; 4096];
        while socket.read(&mut buffer).is_ok_and(|read| read > 0) {}
        Instant::now()
    });
    let root = loopback_config(&url);
    let options = std::ffi::CString::new(
        serde_json::json!({
            "config_dir": root.join("config"),
            "prompts_dir": root.join("prompts"),
        })
        .to_string(),
    )
    .unwrap();
    let (mut engine, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe { pc_engine_open(options.as_ptr(), &mut engine, &mut error) };
    assert_eq!(status, pc_status::PC_OK);
    let token = new_token();
    let sent = SendToken(token);
    let canceller = std::thread::spawn(move || {
        let sent = sent;
        std::thread::sleep(Duration::from_millis(200));
        (Instant::now(), unsafe { pc_cancel(sent.0) })
    });
    let request = c"{\"user_id\": \"u\", \"variables\": {\"question\": \"why?\"}}";
    let mut out = ptr::null_mut();
    let status = unsafe {
        pc_complete_with(
            engine,
            c"ask".as_ptr(),
            request.as_ptr(),
            token,
            &mut out,
            &mut error,
        )
    };
    let returned = Instant::now();
    let (cancelled_at, cancel_status) = canceller.join().unwrap();
    let closed_at = server.join().unwrap();
    assert_eq!(cancel_status, pc_status::PC_OK);
    assert_eq!(status, pc_status::PC_CANCELLED);
    assert!(out.is_null());
    assert_eq!(take_error(error)["kind"], "cancelled");
    assert!(returned - cancelled_at < Duration::from_millis(100));
    assert!(closed_at - cancelled_at < Duration::from_millis(100));
    unsafe { pc_cancel_token_free(token) };
    unsafe { pc_engine_close(engine) };
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_token_cancelled_before_the_call_stops_stream_with_before_any_delta() {
    let engine = open(true);
    let token = new_token();
    assert_eq!(unsafe { pc_cancel(token) }, pc_status::PC_OK);
    assert_eq!(unsafe { pc_cancel(token) }, pc_status::PC_OK, "idempotent");
    let mut seen = Seen::default();
    let request = request();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_stream_with(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            token,
            Some(collect),
            ptr::from_mut(&mut seen).cast(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_CANCELLED);
    assert_eq!(take_error(error)["kind"], "cancelled");
    assert!(seen.deltas.is_empty());
    unsafe { pc_cancel_token_free(token) };
    unsafe { pc_engine_close(engine) };
}

#[test]
fn a_panic_in_our_code_between_deltas_becomes_pc_panic_and_the_engine_keeps_working() {
    let engine = open(true);
    let mut seen = Seen::default();
    test_hook::panic_next("pc_stream callback");
    let (status, error) = stream(engine, &mut seen);
    assert_eq!(status, pc_status::PC_PANIC, "{error}");
    assert_eq!(error["kind"], "panic");
    assert_eq!(
        seen.deltas.len(),
        1,
        "the callback ran, then our code panicked"
    );
    let (status, _) = stream(engine, &mut Seen::default());
    assert_eq!(status, pc_status::PC_OK);
    unsafe { pc_engine_close(engine) };
}

#[test]
fn a_panic_in_any_stream_export_becomes_pc_panic() {
    let engine = open(true);
    let token = new_token();
    let request = request();
    let check = |name: &'static str, call: &mut dyn FnMut(*mut *mut c_char) -> pc_status| {
        let mut error = ptr::null_mut();
        test_hook::panic_next(name);
        assert_eq!(call(&mut error), pc_status::PC_PANIC, "{name}");
        let json = take_error(error);
        assert!(json["message"].as_str().unwrap().contains(name), "{json}");
    };
    let mut out = ptr::null_mut();
    check("pc_stream", &mut |error| unsafe {
        let status = pc_stream(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            Some(collect),
            ptr::null_mut(),
            &mut out,
            error,
        );
        assert!(out.is_null());
        status
    });
    check("pc_stream_with", &mut |error| unsafe {
        pc_stream_with(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            token,
            Some(collect),
            ptr::null_mut(),
            &mut out,
            error,
        )
    });
    check("pc_complete_with", &mut |error| unsafe {
        pc_complete_with(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            token,
            &mut out,
            error,
        )
    });
    check("pc_cancel_token_new", &mut |error| unsafe {
        let mut fresh = ptr::null_mut();
        let status = pc_cancel_token_new(&mut fresh, error);
        assert!(fresh.is_null());
        status
    });
    test_hook::panic_next("pc_cancel");
    assert_eq!(unsafe { pc_cancel(token) }, pc_status::PC_PANIC);
    // The engine and the token still work.
    let mut seen = Seen::default();
    assert_eq!(stream(engine, &mut seen).0, pc_status::PC_OK);
    assert_eq!(unsafe { pc_cancel(token) }, pc_status::PC_OK);
    let _ = take;
    unsafe { pc_cancel_token_free(token) };
    unsafe { pc_engine_close(engine) };
}

/// A provider kind answering with the last message as it is, so any text reaches the callback.
struct Echo;

impl crate::client::Provider for Echo {
    fn call(
        &self,
        request: &crate::client::ProviderRequest<'_>,
    ) -> Result<crate::client::ProviderResponse, crate::client::AttemptError> {
        let last = request.messages.last().map_or("", |m| &m.content);
        Ok(crate::client::ProviderResponse {
            text: last.to_string(),
            finish_reason: Some(crate::client::FinishReason::Stop),
            raw_finish_reason: Some("stop".into()),
            refusal: None,
            response_id: None,
            response_model: None,
            usage: crate::client::Usage::default(),
            usage_reported: crate::client::UsageReported::ALL,
            tool_calls: Vec::new(),
        })
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    /// Whatever text the answer holds (NUL bytes, non-BMP characters, long runs), the callback
    /// gets exactly its bytes with `len`, followed by a NUL, and the completion JSON's text is
    /// the same.
    #[test]
    fn any_text_crosses_the_callback_byte_for_byte(question in super::properties::awkward_text()) {
        let root = config_with_provider(serde_json::json!({"kind": "echo",
            "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}}));
        let options = crate::EngineOptions::new(root.join("config"), root.join("prompts"))
            .with_provider_kind("echo", |_: &crate::client::ProviderSetup<'_>| {
                std::sync::Arc::new(Echo) as std::sync::Arc<dyn crate::client::Provider>
            });
        let engine = pc_engine { engine: crate::Engine::open(options).unwrap() };
        let request = std::ffi::CString::new(
            serde_json::json!({"user_id": "u", "variables": {"question": question}}).to_string(),
        ).unwrap();
        let mut seen = Seen::default();
        let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
        let status = unsafe {
            pc_stream(&engine, c"ask".as_ptr(), request.as_ptr(), Some(collect),
                ptr::from_mut(&mut seen).cast(), &mut out, &mut error)
        };
        let _ = std::fs::remove_dir_all(&root);
        proptest::prop_assert_eq!(status, pc_status::PC_OK);
        let expected = format!("Question: {question}");
        proptest::prop_assert!(seen.nul_terminated || expected.is_empty());
        proptest::prop_assert_eq!(seen.deltas.concat(), expected.clone());
        let completion = take_json(out);
        proptest::prop_assert_eq!(completion["text"].as_str(), Some(expected.as_str()));
    }
}
