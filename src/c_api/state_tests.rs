//! The shared state across the C ABI: a `while_degraded: block` refusal names its server
//! (password masked) in the error's details, as the gem's `StateUnavailable#server` reads it.

use std::ffi::CString;
use std::ptr;

use serde_json::{Value, json};

use super::tests::{FEATURE, copy_tree, request, take_error};
use super::*;

#[test]
fn a_state_unavailable_error_names_the_masked_server_in_its_details() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = std::env::temp_dir().join(format!("pc_c_api_state_{}", std::process::id()));
    copy_tree(&root.join("config"), &copy.join("config"));
    copy_tree(&root.join("prompts"), &copy.join("prompts"));
    let feature_path = copy.join("config/features/career_path_navigator.json");
    let mut feature: Value =
        serde_json::from_str(&std::fs::read_to_string(&feature_path).unwrap()).unwrap();
    feature["budget"] = json!({"daily_usd": 1.0, "policy": "block", "while_degraded": "block"});
    std::fs::write(&feature_path, feature.to_string()).unwrap();
    let options = CString::new(
        json!({
            "config_dir": copy.join("config"),
            "prompts_dir": copy.join("prompts"),
            "mock": true,
            // Port 1 on loopback: nothing listens there.
            "state": {"backend": "redis", "url": "redis://:s3cret@127.0.0.1:1/",
                      "connect_timeout_ms": 50},
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
    let status = unsafe {
        pc_complete(
            engine,
            FEATURE.as_ptr(),
            request.as_ptr(),
            &mut out,
            &mut error,
        )
    };
    unsafe { pc_engine_close(engine) };
    let _ = std::fs::remove_dir_all(&copy);
    assert_eq!(status, pc_status::PC_STATE_UNAVAILABLE);
    let error = take_error(error);
    assert_eq!(error["details"]["server"], "redis://:***@127.0.0.1:1/");
    assert!(!error.to_string().contains("s3cret"), "{error}");
}
