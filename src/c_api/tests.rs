//! The exports called from Rust as C would call them: results, every NULL, invalid UTF-8 and
//! JSON, core errors, and a panic inside each export (through the `cfg(test)` hook).

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use serde_json::{Value, json};

use super::boundary::test_hook;
use super::*;

fn options(mock: bool) -> CString {
    let root = env!("CARGO_MANIFEST_DIR");
    CString::new(
        json!({
            "config_dir": format!("{root}/config"),
            "prompts_dir": format!("{root}/prompts"),
            "mock": mock,
        })
        .to_string(),
    )
    .unwrap()
}

/// A request pinned to a prose version: the ABI tests need an answer the mock can give (the
/// shipped 2.2.0 declares an output schema the mock's prose does not meet).
pub(super) fn request() -> CString {
    CString::new(
        json!({
            "user_id": "user-42",
            "version": "2.0.0",
            "attributes": {"sector": "technology"},
            "variables": {
                "current_role": "Data Analyst",
                "degree": "BSc Economics",
                "skills": ["SQL", "Excel"],
                "sector": "technology",
                "goals": "Move into product management",
            },
        })
        .to_string(),
    )
    .unwrap()
}

/// Copies a returned string and frees it.
pub(super) fn take(pointer: *mut c_char) -> String {
    assert!(!pointer.is_null());
    // SAFETY: a string from the library, freed once right after.
    let text = unsafe { CStr::from_ptr(pointer) }
        .to_str()
        .unwrap()
        .to_string();
    unsafe { pc_string_free(pointer) };
    text
}

pub(super) fn take_json(pointer: *mut c_char) -> Value {
    serde_json::from_str(&take(pointer)).unwrap()
}

/// The error JSON, checked for its three keys.
pub(super) fn take_error(pointer: *mut c_char) -> Value {
    let error = take_json(pointer);
    let object = error.as_object().expect("an object");
    assert!(object["kind"].is_string() && object["message"].is_string());
    assert!(object.contains_key("details"));
    error
}

pub(super) fn open(mock: bool) -> *mut pc_engine {
    let mut engine = ptr::null_mut();
    let mut error = ptr::null_mut();
    let status = unsafe { pc_engine_open(options(mock).as_ptr(), &mut engine, &mut error) };
    assert_eq!(status, pc_status::PC_OK);
    assert!(error.is_null() && !engine.is_null());
    engine
}

pub(super) const FEATURE: &CStr = c"career_path_navigator";

#[test]
fn resolve_complete_feedback_metrics_reload_and_close() {
    let engine = open(true);
    let request = request();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_resolve(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_OK);
    assert!(error.is_null());
    let resolution = take_json(out);
    assert_eq!(resolution["feature"], "career_path_navigator");
    assert!(
        resolution["messages"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    );

    let status = unsafe {
        pc_complete(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_OK);
    let completion = take_json(out);
    assert!(completion["text"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(completion["resolution"]["feature"], "career_path_navigator");
    let request_id = CString::new(completion["request_id"].as_str().unwrap()).unwrap();

    let status = unsafe {
        pc_feedback(
            engine,
            request_id.as_ptr(),
            c"thumbs_up".as_ptr(),
            c"true".as_ptr(),
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_OK);
    let status = unsafe { pc_metrics_json(engine, &mut out, &mut error) };
    assert_eq!(status, pc_status::PC_OK);
    let metrics = take_json(out);
    assert_eq!(metrics["requests"].as_array().unwrap().len(), 1);
    assert_eq!(metrics["feedback"].as_array().unwrap().len(), 1);
    let status = unsafe { pc_prometheus_text(engine, &mut out, &mut error) };
    assert_eq!(status, pc_status::PC_OK);
    assert!(take(out).contains("prompt_config_requests_total"));
    assert_eq!(unsafe { pc_reload(engine, &mut error) }, pc_status::PC_OK);
    assert_eq!(unsafe { pc_after_fork(engine) }, pc_status::PC_OK);
    unsafe { pc_engine_close(engine) };
}

#[test]
fn core_errors_map_to_their_status_and_error_json() {
    let engine = open(true);
    // Out-parameters are cleared on failure, whatever they held.
    let mut out = ptr::NonNull::<c_char>::dangling().as_ptr();
    let mut error = ptr::NonNull::<c_char>::dangling().as_ptr();
    let status = unsafe {
        pc_resolve(
            engine,
            c"no_such_feature".as_ptr(),
            request().as_ptr(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_UNKNOWN_FEATURE);
    assert!(out.is_null());
    let json = take_error(error);
    assert_eq!(json["kind"], "unknown_feature");

    let bare = cr#"{"user_id": 7}"#;
    let status = unsafe {
        pc_resolve(
            engine,
            FEATURE.as_ptr(),
            bare.as_ptr(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_MISSING_VARIABLE);
    let json = take_error(error);
    assert_eq!(json["kind"], "missing_variable");
    assert!(
        json["details"]["missing"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    );

    let pinned = cr#"{"user_id": "u", "version": "9.9.9"}"#;
    let status = unsafe {
        pc_resolve(
            engine,
            FEATURE.as_ptr(),
            pinned.as_ptr(),
            &mut out,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_UNKNOWN_VERSION);
    assert_eq!(take_error(error)["kind"], "unknown_version");

    let status = unsafe {
        pc_feedback(
            engine,
            c"".as_ptr(),
            c"rating".as_ptr(),
            c"4".as_ptr(),
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_FEEDBACK);
    assert_eq!(take_error(error)["kind"], "invalid_feedback");
    let status = unsafe {
        pc_feedback(
            engine,
            c"r".as_ptr(),
            c"rating".as_ptr(),
            c"{}".as_ptr(),
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_FEEDBACK);
    // A NULL error out-parameter is allowed: the status alone reports the failure.
    let status = unsafe {
        pc_feedback(
            engine,
            c"r".as_ptr(),
            c"rating".as_ptr(),
            c"[]".as_ptr(),
            ptr::null_mut(),
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_FEEDBACK);
    unsafe { pc_string_free(error) };
    unsafe { pc_engine_close(engine) };

    let mut engine = ptr::null_mut();
    let missing =
        cr#"{"config_dir": "/nonexistent/config", "prompts_dir": "/nonexistent/prompts"}"#;
    let status = unsafe { pc_engine_open(missing.as_ptr(), &mut engine, &mut error) };
    assert_eq!(status, pc_status::PC_CONFIG_INVALID);
    assert!(engine.is_null());
    assert_eq!(take_error(error)["kind"], "config_invalid");
}

fn assert_invalid(status: pc_status, error: *mut c_char, argument: &str, reason: &str) {
    assert_eq!(
        status,
        pc_status::PC_INVALID_ARGUMENT,
        "{argument}: {reason}"
    );
    let json = take_error(error);
    assert_eq!(json["kind"], "invalid_argument");
    assert_eq!(json["details"]["argument"], argument);
    assert_eq!(json["details"]["reason"], reason);
}

#[test]
fn null_arguments_return_invalid_argument() {
    let engine = open(true);
    let request = request();
    let null_text: *const c_char = ptr::null();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let mut handle = ptr::null_mut();

    let status = unsafe { pc_engine_open(null_text, &mut handle, &mut error) };
    assert_invalid(status, error, "options_json", "null");
    let status = unsafe { pc_engine_open(c"{}".as_ptr(), ptr::null_mut(), &mut error) };
    assert_invalid(status, error, "engine", "null");

    type Call = unsafe extern "C" fn(
        *const pc_engine,
        *const c_char,
        *const c_char,
        *mut *mut c_char,
        *mut *mut c_char,
    ) -> pc_status;
    for call in [pc_resolve as Call, pc_complete as Call] {
        let status = unsafe {
            call(
                ptr::null(),
                FEATURE.as_ptr(),
                request.as_ptr(),
                &mut out,
                &mut error,
            )
        };
        assert_invalid(status, error, "engine", "null");
        let status = unsafe { call(engine, null_text, request.as_ptr(), &mut out, &mut error) };
        assert_invalid(status, error, "feature", "null");
        let status = unsafe { call(engine, FEATURE.as_ptr(), null_text, &mut out, &mut error) };
        assert_invalid(status, error, "request_json", "null");
        let status = unsafe {
            call(
                engine,
                FEATURE.as_ptr(),
                request.as_ptr(),
                ptr::null_mut(),
                &mut error,
            )
        };
        assert_invalid(status, error, "result_json", "null");
        assert!(out.is_null());
    }

    let (id, metric, value) = (c"r".as_ptr(), c"m".as_ptr(), c"1".as_ptr());
    let status = unsafe { pc_feedback(ptr::null(), id, metric, value, &mut error) };
    assert_invalid(status, error, "engine", "null");
    let status = unsafe { pc_feedback(engine, null_text, metric, value, &mut error) };
    assert_invalid(status, error, "request_id", "null");
    let status = unsafe { pc_feedback(engine, id, null_text, value, &mut error) };
    assert_invalid(status, error, "metric", "null");
    let status = unsafe { pc_feedback(engine, id, metric, null_text, &mut error) };
    assert_invalid(status, error, "value_json", "null");

    let status = unsafe { pc_reload(ptr::null(), &mut error) };
    assert_invalid(status, error, "engine", "null");
    let status = unsafe { pc_metrics_json(ptr::null(), &mut out, &mut error) };
    assert_invalid(status, error, "engine", "null");
    let status = unsafe { pc_metrics_json(engine, ptr::null_mut(), &mut error) };
    assert_invalid(status, error, "metrics_json", "null");
    let status = unsafe { pc_prometheus_text(ptr::null(), &mut out, &mut error) };
    assert_invalid(status, error, "engine", "null");
    let status = unsafe { pc_prometheus_text(engine, ptr::null_mut(), &mut error) };
    assert_invalid(status, error, "text", "null");
    assert_eq!(
        unsafe { pc_after_fork(ptr::null()) },
        pc_status::PC_INVALID_ARGUMENT
    );
    unsafe {
        pc_string_free(ptr::null_mut());
        pc_engine_close(ptr::null_mut());
        pc_engine_close(engine);
    }
}

#[test]
fn invalid_utf8_and_json_return_invalid_argument() {
    let engine = open(true);
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let bad_utf8 = [b'c', 0xff, 0xfe, 0].as_ptr().cast::<c_char>();
    let mut handle = ptr::null_mut();

    let status = unsafe { pc_engine_open(bad_utf8, &mut handle, &mut error) };
    assert_invalid(status, error, "options_json", "invalid_utf8");
    let status = unsafe { pc_engine_open(c"{".as_ptr(), &mut handle, &mut error) };
    assert_invalid(status, error, "options_json", "invalid_json");
    let status = unsafe { pc_engine_open(c"[]".as_ptr(), &mut handle, &mut error) };
    assert_invalid(status, error, "options_json", "wrong_shape");
    let status =
        unsafe { pc_engine_open(cr#"{"confg_dir": "x"}"#.as_ptr(), &mut handle, &mut error) };
    assert_invalid(status, error, "options_json", "wrong_shape");
    assert!(handle.is_null());

    let request = request();
    let status = unsafe { pc_resolve(engine, bad_utf8, request.as_ptr(), &mut out, &mut error) };
    assert_invalid(status, error, "feature", "invalid_utf8");
    for (text, reason) in [
        (c"{\"user_id\": ", "invalid_json"),
        (c"not json", "invalid_json"),
        (c"[\"u\"]", "wrong_shape"),
        (c"\"u\"", "wrong_shape"),
        (c"{\"attributes\": {}}", "wrong_shape"),
        (c"{\"user_id\": [1]}", "wrong_shape"),
        (c"{\"user_id\": \"u\", \"extra\": 1}", "wrong_shape"),
    ] {
        let status = unsafe {
            pc_complete(
                engine,
                FEATURE.as_ptr(),
                text.as_ptr(),
                &mut out,
                &mut error,
            )
        };
        assert_invalid(status, error, "request_json", reason);
    }
    let status = unsafe {
        pc_feedback(
            engine,
            c"r".as_ptr(),
            c"m".as_ptr(),
            c"tru".as_ptr(),
            &mut error,
        )
    };
    assert_invalid(status, error, "value_json", "invalid_json");
    let status = unsafe {
        pc_feedback(
            engine,
            c"r".as_ptr(),
            bad_utf8,
            c"true".as_ptr(),
            &mut error,
        )
    };
    assert_invalid(status, error, "metric", "invalid_utf8");
    unsafe { pc_engine_close(engine) };
}

#[test]
fn a_panic_in_any_export_becomes_pc_panic_and_the_engine_keeps_working() {
    let engine = open(true);
    let request = request();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let mut check = |name: &'static str, call: &mut dyn FnMut(&mut *mut c_char) -> pc_status| {
        test_hook::panic_next(name);
        let status = call(&mut error);
        assert_eq!(status, pc_status::PC_PANIC, "{name}");
        let json = take_error(error);
        assert_eq!(json["kind"], "panic");
        assert!(json["message"].as_str().unwrap().contains(name));
        // The hook fired once; the next call works.
        assert_ne!(call(&mut error), pc_status::PC_PANIC, "{name}");
        if !error.is_null() {
            unsafe { pc_string_free(error) };
        }
    };
    check("pc_engine_open", &mut |error| unsafe {
        let mut handle = ptr::null_mut();
        let status = pc_engine_open(options(true).as_ptr(), &mut handle, error);
        assert!(status != pc_status::PC_OK || !handle.is_null());
        pc_engine_close(handle);
        status
    });
    check("pc_resolve", &mut |error| unsafe {
        let status = pc_resolve(engine, FEATURE.as_ptr(), request.as_ptr(), &mut out, error);
        if status == pc_status::PC_OK {
            take(out);
            out = ptr::null_mut();
        } else {
            assert!(out.is_null());
        }
        status
    });
    check("pc_complete", &mut |error| unsafe {
        let status = pc_complete(engine, FEATURE.as_ptr(), request.as_ptr(), &mut out, error);
        if status == pc_status::PC_OK {
            take(out);
            out = ptr::null_mut();
        } else {
            assert!(out.is_null());
        }
        status
    });
    check("pc_feedback", &mut |error| unsafe {
        pc_feedback(engine, c"r".as_ptr(), c"m".as_ptr(), c"1".as_ptr(), error)
    });
    check("pc_reload", &mut |error| unsafe {
        pc_reload(engine, error)
    });
    check("pc_metrics_json", &mut |error| unsafe {
        let status = pc_metrics_json(engine, &mut out, error);
        if status == pc_status::PC_OK {
            take(out);
        }
        status
    });
    check("pc_prometheus_text", &mut |error| unsafe {
        let status = pc_prometheus_text(engine, &mut out, error);
        if status == pc_status::PC_OK {
            take(out);
        }
        status
    });
    for _ in 0..2 {
        assert_eq!(unsafe { pc_test_panic(&mut error) }, pc_status::PC_PANIC);
        assert_eq!(take_error(error)["kind"], "panic");
        assert_eq!(
            unsafe { pc_test_panic(ptr::null_mut()) },
            pc_status::PC_PANIC
        );
    }
    test_hook::panic_next("pc_after_fork");
    assert_eq!(unsafe { pc_after_fork(engine) }, pc_status::PC_PANIC);
    assert_eq!(unsafe { pc_after_fork(engine) }, pc_status::PC_OK);
    unsafe { pc_engine_close(engine) };
}

#[test]
fn version_is_static() {
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(pc_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn the_handle_is_shared_across_threads() {
    struct Shared(*mut pc_engine);
    // SAFETY: pc_engine is Send + Sync (checked at compile time in mod.rs).
    unsafe impl Send for Shared {}
    unsafe impl Sync for Shared {}
    let engine = Shared(open(true));
    let request = request();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let shared = &engine;
                for _ in 0..20 {
                    let mut out = ptr::null_mut();
                    let status = unsafe {
                        pc_resolve(
                            shared.0,
                            FEATURE.as_ptr(),
                            request.as_ptr(),
                            &mut out,
                            ptr::null_mut(),
                        )
                    };
                    assert_eq!(status, pc_status::PC_OK);
                    take(out);
                }
            });
        }
    });
    unsafe { pc_engine_close(engine.0) };
}

/// `pc_resolve` with `user_id` given as the JSON text `user_id`.
fn resolve_user(engine: *mut pc_engine, user_id: &str) -> (pc_status, Value) {
    let mut request: Value = serde_json::from_str(request().to_str().unwrap()).unwrap();
    request["user_id"] = Value::Null;
    let text = request
        .to_string()
        .replace("\"user_id\":null", &format!("\"user_id\":{user_id}"));
    let text = CString::new(text).unwrap();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_resolve(
            engine,
            FEATURE.as_ptr(),
            text.as_ptr(),
            &mut out,
            &mut error,
        )
    };
    if status == pc_status::PC_OK {
        (status, take_json(out))
    } else {
        (status, take_error(error))
    }
}

#[test]
fn integer_and_string_user_ids_share_a_bucket() {
    let engine = open(true);
    let (status, number) = resolve_user(engine, "2");
    assert_eq!(status, pc_status::PC_OK);
    let (_, text) = resolve_user(engine, "\"2\"");
    for field in ["version", "source", "experiment", "variant", "bucket"] {
        assert_eq!(number[field], text[field], "{field}");
    }
    unsafe { pc_engine_close(engine) };
}

#[test]
fn float_user_ids_are_an_invalid_argument_naming_user_id() {
    let engine = open(true);
    for user_id in ["2.0", "2e0", "2.5", "true", "null", "18446744073709551616"] {
        let (status, error) = resolve_user(engine, user_id);
        assert_eq!(status, pc_status::PC_INVALID_ARGUMENT, "{user_id}");
        assert_eq!(error["kind"], "invalid_argument");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("user_id must be a string or an integer"),
            "{user_id}: {message}"
        );
    }
    unsafe { pc_engine_close(engine) };
}

#[test]
fn engine_options_may_switch_the_state_backend_to_redis() {
    let root = env!("CARGO_MANIFEST_DIR");
    let options = |state: Value| {
        CString::new(
            json!({
                "config_dir": format!("{root}/config"),
                "prompts_dir": format!("{root}/prompts"),
                "mock": true,
                "state": state,
            })
            .to_string(),
        )
        .unwrap()
    };
    // Opening connects to nothing: an engine starts while Redis is down.
    let redis = options(json!({"backend": "redis", "url": "redis://127.0.0.1:1/"}));
    let (mut engine, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe { pc_engine_open(redis.as_ptr(), &mut engine, &mut error) };
    assert_eq!(status, pc_status::PC_OK);
    unsafe { pc_engine_close(engine) };

    let bad = options(json!({"backend": "redis", "url": "redis://h/", "pool_size": 0}));
    let mut handle = ptr::null_mut();
    let status = unsafe { pc_engine_open(bad.as_ptr(), &mut handle, &mut error) };
    assert_invalid(status, error, "options_json", "wrong_shape");
    assert!(handle.is_null());
}

/// Copies `from` into `to`, folders included.
pub(super) fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_cache_hit_crosses_the_abi_as_a_cache_object_and_a_miss_as_null() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = std::env::temp_dir().join(format!("pc_c_api_cache_{}", std::process::id()));
    copy_tree(&root.join("config"), &copy.join("config"));
    copy_tree(&root.join("prompts"), &copy.join("prompts"));
    let feature_path = copy.join("config/features/career_path_navigator.json");
    let mut feature: Value =
        serde_json::from_str(&std::fs::read_to_string(&feature_path).unwrap()).unwrap();
    feature["cache"] = json!({
        "ttl_seconds": 60, "partition_by": ["sector"], "allow_temperature_above_zero": true
    });
    std::fs::write(&feature_path, feature.to_string()).unwrap();
    let options = CString::new(
        json!({
            "config_dir": copy.join("config"),
            "prompts_dir": copy.join("prompts"),
            "mock": true,
        })
        .to_string(),
    )
    .unwrap();
    let (mut engine, mut out, mut error) = (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    assert_eq!(
        unsafe { pc_engine_open(options.as_ptr(), &mut engine, &mut error) },
        pc_status::PC_OK
    );
    let request = request();
    let mut complete = || {
        let status = unsafe {
            pc_complete(
                engine,
                FEATURE.as_ptr(),
                request.as_ptr(),
                &mut out,
                &mut error,
            )
        };
        assert_eq!(status, pc_status::PC_OK);
        take_json(out)
    };
    let miss = complete();
    let hit = complete();
    unsafe { pc_engine_close(engine) };
    let _ = std::fs::remove_dir_all(&copy);
    assert_eq!(miss["cache"], Value::Null);
    assert_eq!(hit["cache"]["saved_usd"], miss["cost_usd"]);
    assert_eq!(hit["cache"]["partition"], "sector=technology");
    assert_eq!(hit["cost_usd"], 0.0);
    assert_eq!(hit["attempts"], json!([]));
}
