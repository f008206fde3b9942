//! Property tests of the serializer against a real Ruby VM, embedded in this test binary
//! (magnus' `embed` feature, a dev-dependency only). Arbitrary `serde_json::Value`s (empty
//! strings, arrays and hashes, NUL bytes, non-BMP characters, long strings, nesting) go through
//! `to_ruby` and come back through the gem's own Ruby-to-JSON conversion (`convert::to_json`)
//! unchanged; frozen output is frozen all the way down; field-name Symbols stay valid across
//! full GCs; keys from data are collectable Symbols. Some cases run under `GC.stress`.
//!
//! Why embedded rather than through the gem's Ruby tests: proptest generates and shrinks here,
//! and `to_ruby` is called directly, so every shape serde can produce is reached, not only the
//! ones the core's results happen to contain today.
//!
//! Ruby runs on one thread per process: a thread with a large stack starts the VM once and runs
//! each test's closure in turn (`with_ruby`). Run with
//! `cargo test --manifest-path ruby/ext/prompt_config/Cargo.toml` (tests/ruby_gem.rs does).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};

use magnus::{RArray, RHash, RString, Ruby, Symbol, Value, prelude::*, r_hash::ForEach};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde::Serialize;
use serde_json::{Map, Value as Json, json};

use super::{Keys, to_ruby};
use crate::convert::to_json;

type Job = Box<dyn FnOnce(&Ruby) + Send>;

/// Runs `work` on the Ruby thread and returns its result (a panic there is resumed here).
fn with_ruby<R: Send + 'static>(work: impl FnOnce(&Ruby) -> R + Send + 'static) -> R {
    static RUBY_THREAD: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    let sender = RUBY_THREAD.get_or_init(|| {
        let (sender, receiver) = channel::<Job>();
        std::thread::Builder::new()
            .name("ruby".into())
            .stack_size(256 << 20)
            .spawn(move || {
                // SAFETY: this thread's entry is above every frame that calls Ruby, Ruby is
                // initialised once per process, and the VM is never cleaned up (the process
                // ends with the test run).
                let cleanup = unsafe { magnus::embed::init() };
                let ruby: &Ruby = &cleanup;
                for job in receiver {
                    job(ruby);
                }
                std::mem::forget(cleanup);
            })
            .expect("start the Ruby thread");
        Mutex::new(sender)
    });
    let (reply, answer) = channel();
    let job: Job = Box::new(move |ruby| {
        let _ = reply.send(catch_unwind(AssertUnwindSafe(|| work(ruby))));
    });
    sender
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .send(job)
        .expect("the Ruby thread is running");
    match answer.recv().expect("the Ruby thread answers") {
        Ok(result) => result,
        Err(payload) => resume_unwind(payload),
    }
}

/// Text that Ruby's C API and C strings find hard.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        3 => prop::collection::vec(any::<char>(), 0..12).prop_map(String::from_iter),
        2 => prop::sample::select(vec![
            "\0", "a\0b", "\0\0", "\u{1F600}", "\u{10FFFF}", "e\u{301}", "\u{FEFF}", "\u{200F}",
            "\u{1F469}\u{200D}\u{1F4BB}", "\\u0000", "\"", "\n",
        ])
        .prop_map(str::to_string),
        // Past INTERN_MAX (28 bytes): the unfrozen-then-frozen path instead of the fstring one.
        1 => (29usize..200, any::<char>()).prop_map(|(count, c)| c.to_string().repeat(count)),
        1 => Just("\u{1F600}\0x".repeat(40_000)),
    ]
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_filter_map("a JSON number is finite", |number| {
            serde_json::Number::from_f64(number).map(Json::Number)
        }),
        text().prop_map(Json::String),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|entries| Json::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Runs `property` for `cases` generated values on the Ruby thread, optionally under
/// `GC.stress`.
fn check_json_property(
    cases: u32,
    gc_stress: bool,
    property: fn(&Ruby, &Json) -> Result<(), TestCaseError>,
) {
    with_ruby(move |ruby| {
        set_gc_stress(ruby, gc_stress);
        let result = runner(cases).run(&json_value(), |value| property(ruby, &value));
        set_gc_stress(ruby, false);
        if let Err(error) = result {
            panic!("{error}");
        }
    });
}

fn set_gc_stress(ruby: &Ruby, on: bool) {
    let _: Value = ruby
        .eval(if on {
            "GC.stress = true"
        } else {
            "GC.stress = false"
        })
        .expect("set GC.stress");
}

fn round_trip(ruby: &Ruby, value: &Json, keys: Keys, freeze: bool) -> Result<Json, TestCaseError> {
    let converted = to_ruby(ruby, value, keys, freeze)
        .map_err(|error| TestCaseError::fail(format!("to_ruby failed: {error}")))?;
    to_json(ruby, converted).map_err(|error| TestCaseError::fail(format!("to_json: {error}")))
}

/// Every String, Array and Hash under `value` is frozen, every String is valid UTF-8, and
/// every Hash key is a Symbol (`Keys::Symbols`) or a frozen String.
fn deep_frozen_problem(ruby: &Ruby, value: Value, keys: Keys, path: &str) -> Option<String> {
    if let Some(string) = RString::from_value(value) {
        let valid: bool = string.funcall("valid_encoding?", ()).unwrap_or(false);
        let utf8 = string.enc_get() == ruby.utf8_encindex();
        return (!(value.is_frozen() && valid && utf8)).then(|| {
            format!(
                "{path}: frozen {}, UTF-8 {utf8}, valid {valid}",
                value.is_frozen()
            )
        });
    }
    if let Some(array) = RArray::from_value(value) {
        if !value.is_frozen() {
            return Some(format!("{path}: an unfrozen Array"));
        }
        return (0..array.len()).find_map(|index| {
            let item: Value = array.entry(index as isize).ok()?;
            deep_frozen_problem(ruby, item, keys, &format!("{path}[{index}]"))
        });
    }
    if let Some(hash) = RHash::from_value(value) {
        if !value.is_frozen() {
            return Some(format!("{path}: an unfrozen Hash"));
        }
        let mut problem = None;
        let _ = hash.foreach(|key: Value, item: Value| {
            let key_ok = match keys {
                Keys::Symbols => Symbol::from_value(key).is_some(),
                Keys::Strings => RString::from_value(key).is_some() && key.is_frozen(),
            };
            problem = if key_ok {
                deep_frozen_problem(ruby, item, keys, &format!("{path}[{key:?}]"))
            } else {
                Some(format!("{path}: the key {key:?} is not a {keys:?} key"))
            };
            Ok(if problem.is_some() {
                ForEach::Stop
            } else {
                ForEach::Continue
            })
        });
        return problem;
    }
    None
}

fn assert_round_trip(
    ruby: &Ruby,
    value: &Json,
    keys: Keys,
    freeze: bool,
) -> Result<(), TestCaseError> {
    let back = round_trip(ruby, value, keys, freeze)?;
    prop_assert_eq!(&back, value);
    Ok(())
}

// --- Regression examples (issue 9) -------------------------------------------------------------

#[test]
fn an_empty_string_becomes_an_empty_frozen_string() {
    with_ruby(|ruby| {
        for freeze in [true, false] {
            let value = to_ruby(ruby, "", Keys::Symbols, freeze).expect("converts");
            let string = RString::from_value(value).expect("a String");
            assert_eq!(string.len(), 0);
            assert_eq!(value.is_frozen(), freeze);
            assert!(string.enc_get() == ruby.utf8_encindex());
        }
    });
}

#[test]
fn an_empty_json_pointer_in_error_details_converts() {
    // The shape of the config error that crashed `PromptConfig.engine` for a missing directory.
    let details = json!({"problems": [{"file": "/nonexistent/x/providers.json", "pointer": "", "message": ""}]});
    with_ruby(move |ruby| {
        let back = round_trip(ruby, &details, Keys::Symbols, true).expect("converts");
        assert_eq!(back, details);
    });
}

#[test]
fn empty_keys_arrays_and_hashes_convert() {
    let value = json!({"": "", "a": [], "b": {}, "c": [[], {}, ""], "\u{0}": {"": []}});
    with_ruby(move |ruby| {
        for keys in [Keys::Symbols, Keys::Strings] {
            assert_eq!(
                round_trip(ruby, &value, keys, true).expect("converts"),
                value
            );
        }
    });
}

// --- Properties ---------------------------------------------------------------------------------

#[test]
fn any_json_round_trips_with_symbol_keys_frozen() {
    check_json_property(256, false, |ruby, value| {
        assert_round_trip(ruby, value, Keys::Symbols, true)
    });
}

#[test]
fn any_json_round_trips_with_string_keys_unfrozen() {
    check_json_property(256, false, |ruby, value| {
        assert_round_trip(ruby, value, Keys::Strings, false)
    });
}

#[test]
fn frozen_output_is_frozen_valid_utf8_all_the_way_down() {
    check_json_property(128, false, |ruby, value| {
        for keys in [Keys::Symbols, Keys::Strings] {
            let converted = to_ruby(ruby, value, keys, true)
                .map_err(|error| TestCaseError::fail(error.to_string()))?;
            if let Some(problem) = deep_frozen_problem(ruby, converted, keys, "value") {
                return Err(TestCaseError::fail(problem));
            }
        }
        Ok(())
    });
}

#[test]
fn any_json_round_trips_under_gc_stress() {
    check_json_property(24, true, |ruby, value| {
        assert_round_trip(ruby, value, Keys::Symbols, true)
    });
}

#[test]
fn deeply_nested_json_converts() {
    // Deeper than serde_json's parser allows (128), as a value built in code could be.
    let mut value = json!("");
    for depth in 0..600 {
        value = if depth % 2 == 0 {
            json!([value])
        } else {
            json!({"": value})
        };
    }
    with_ruby(move |ruby| {
        let mut current = to_ruby(ruby, &value, Keys::Symbols, true).expect("converts");
        let mut depth = 0;
        loop {
            if let Some(array) = RArray::from_value(current) {
                current = array.entry(0).expect("one item");
            } else if let Some(hash) = RHash::from_value(current) {
                current = hash.get(ruby.to_symbol("")).expect("the empty key");
            } else {
                break;
            }
            depth += 1;
        }
        assert_eq!(depth, 600);
        assert_eq!(
            RString::from_value(current).map(|string| string.len()),
            Some(0)
        );
    });
}

#[derive(Serialize)]
struct Record {
    feature: String,
    pointer: String,
    nested: Option<Box<Record>>,
}

#[test]
fn field_name_symbols_are_static_and_survive_full_gcs() {
    with_ruby(|ruby| {
        let record = Record {
            feature: String::new(),
            pointer: "/a".into(),
            nested: Some(Box::new(Record {
                feature: "x".into(),
                pointer: String::new(),
                nested: None,
            })),
        };
        for _ in 0..3 {
            let _: Value = ruby
                .eval("GC.start(full_mark: true, immediate_sweep: true)")
                .expect("GC");
            let value = to_ruby(ruby, &record, Keys::Symbols, true).expect("converts");
            let hash = RHash::from_value(value).expect("a Hash");
            let keys: RArray = hash.funcall("keys", ()).expect("keys");
            for index in 0..keys.len() {
                let key: Value = keys.entry(index as isize).expect("a key");
                let symbol = Symbol::from_value(key).expect("a Symbol key");
                assert!(
                    symbol.is_static(),
                    "{key:?} is cached, so it must be static"
                );
                let name: String = symbol.funcall("to_s", ()).expect("a name");
                assert!(
                    ["feature", "pointer", "nested"].contains(&name.as_str()),
                    "{name}"
                );
            }
        }
    });
}

#[test]
fn map_keys_from_data_are_collectable_symbols() {
    with_ruby(|ruby| {
        let name = format!("data-key-{}-{:p}", std::process::id(), &ruby);
        let value = json!({ name.clone(): 1 });
        let converted = to_ruby(ruby, &value, Keys::Symbols, true).expect("converts");
        let hash = RHash::from_value(converted).expect("a Hash");
        let keys: RArray = hash.funcall("keys", ()).expect("keys");
        let key: Value = keys.entry(0).expect("one key");
        let symbol = Symbol::from_value(key).expect("a Symbol key");
        assert!(
            !symbol.is_static(),
            "a key from data must not be interned forever"
        );
        let text: String = symbol.funcall("to_s", ()).expect("a name");
        assert_eq!(text, name);
    });
}
