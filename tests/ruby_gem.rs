//! Runs the Ruby gem's minitest suite (`ruby/test/*_test.rb`) against the native extension
//! built from this checkout, and the extension crate's own Rust tests (the serializer's
//! property tests, in a Ruby VM embedded in the test binary), so `cargo test` covers the gem
//! wherever Ruby is installed (CI installs Debian's ruby, ruby-dev, libclang-dev,
//! ruby-railties and puma).
//!
//! The extension is compiled the way `gem install` does it: `ruby ext/prompt_config/extconf.rb`
//! writes a Makefile and `make` runs cargo, here into `target/tmp/ruby_gem/` (cargo's own target
//! folder for the ext crate is `target/tmp/ruby_gem/cargo`). Each test file then runs in its own
//! Ruby process, one at a time (the GVL test measures wall time).
//!
//! Without `ruby`, Ruby's headers, make or libclang, `build.rs` says so in one notice and every
//! test here is reported as ignored; with `CI` set they run, and fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ruby_root() -> PathBuf {
    project_root().join("ruby")
}

fn ruby() -> String {
    std::env::var("RUBY").unwrap_or_else(|_| "ruby".to_string())
}

fn describe(output: &Output) -> String {
    format!(
        "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Where `cargo build` and `cargo test` of the ext crate put their output.
fn work_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("ruby_gem")
}

/// Runs `command`, failing with its output (and a hint when the program is missing).
fn run_checked(command: &mut Command) -> Result<Output, String> {
    let output = command.output().map_err(|error| {
        format!(
            "{command:?} cannot run: {error} (this suite needs ruby, Ruby's headers, make, \
             libclang and cargo; build.rs marks it ignored when they are missing, unless CI is \
             set)"
        )
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!("{command:?} failed: {}", describe(&output)))
    }
}

/// Compiles the extension with extconf.rb and make, once per test binary; returns the
/// directory to put on Ruby's load path.
fn build() -> Result<PathBuf, String> {
    let work = work_dir();
    let build_dir = work.join("build");
    std::fs::create_dir_all(&build_dir).map_err(|error| error.to_string())?;
    let extconf = ruby_root().join("ext/prompt_config/extconf.rb");
    let run = |command: &mut Command| -> Result<Output, String> {
        run_checked(
            command
                .current_dir(&build_dir)
                .env("PROMPT_CONFIG_CARGO_TARGET_DIR", work.join("cargo"))
                .env("PROMPT_CONFIG_NO_RB_SYS", "1")
                // `Native.panic_for_tests` and `.sleep_released` exist only with this feature.
                .env("PROMPT_CONFIG_CARGO_FEATURES", "test-hooks")
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("CARGO_BUILD_TARGET_DIR"),
        )
    };
    run(Command::new(ruby()).arg(&extconf))?;
    // Without --locked, so a new dependency of the core crate updates the ext crate's Cargo.lock.
    run(Command::new("make").arg("CARGO_LOCKED="))?;

    let native_dir = work.join("load_path");
    std::fs::create_dir_all(native_dir.join("prompt_config")).map_err(|error| error.to_string())?;
    std::fs::copy(
        build_dir.join("prompt_config.so"),
        native_dir.join("prompt_config/prompt_config.so"),
    )
    .map_err(|error| format!("copying the extension: {error}"))?;
    Ok(native_dir)
}

fn setup() -> &'static Result<PathBuf, String> {
    static SETUP: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    SETUP.get_or_init(build)
}

/// One Ruby test process at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `ruby/test/<file>` and fails with its output unless every test passes.
fn run_ruby_test(file: &str) {
    let _guard = serial();
    let native_dir = match setup() {
        Err(error) => panic!("building the Ruby extension failed:\n{error}"),
        Ok(native_dir) => native_dir,
    };
    let lib = ruby_root().join("lib");
    let rubylib = std::env::join_paths([native_dir.as_path(), lib.as_path()])
        .expect("load path without separators");
    let output = Command::new(ruby())
        .arg(format!("-I{}", native_dir.display()))
        .arg(format!("-I{}", lib.display()))
        .arg(format!("-I{}", ruby_root().join("test").display()))
        .arg(ruby_root().join("test").join(file))
        .current_dir(ruby_root())
        .env("RUBYLIB", rubylib)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap_or_else(|error| panic!("running {file}: {error}"));
    // Shown with `cargo test -- --nocapture`: timings (GVL, packaging) are printed there.
    println!("{}", String::from_utf8_lossy(&output.stdout));
    assert!(
        output.status.success(),
        "{file} failed: {}",
        describe(&output)
    );
}

/// The test files below, in the order they run.
const TEST_FILES: &[&str] = &[
    "api_test.rb",
    "boundary_values_test.rb",
    "errors_test.rb",
    "gvl_test.rb",
    "stream_test.rb",
    "fork_test.rb",
    "rails_test.rb",
    "puma_test.rb",
    "rails_stream_test.rb",
    "redis_state_test.rb",
    "packaging_test.rb",
    "subject_id_test.rb",
    "history_test.rb",
    "eval_test.rb",
    "tracing_test.rb",
];

#[test]
fn every_ruby_test_file_has_a_test_here() {
    let mut found: Vec<String> = std::fs::read_dir(ruby_root().join("test"))
        .expect("ruby/test")
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| name.ends_with("_test.rb"))
        .collect();
    found.sort();
    let mut listed: Vec<String> = TEST_FILES.iter().map(|name| name.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "add the new Ruby test file to tests/ruby_gem.rs"
    );
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_api() {
    run_ruby_test("api_test.rb");
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_boundary_values_and_gc_stress() {
    run_ruby_test("boundary_values_test.rb");
}

/// `cargo test` of the ext crate: the serializer's property tests in an embedded Ruby VM.
#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_ext_serializer_properties() {
    let _guard = serial();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = ruby_root().join("ext/prompt_config/Cargo.toml");
    let outcome = run_checked(
        Command::new(cargo)
            .arg("test")
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(work_dir().join("cargo"))
            .current_dir(ruby_root())
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR"),
    );
    match outcome {
        Ok(output) => println!("{}", String::from_utf8_lossy(&output.stdout)),
        Err(error) => panic!("the ext crate's tests failed:\n{error}"),
    }
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_errors() {
    run_ruby_test("errors_test.rb");
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_gvl_released_during_complete() {
    run_ruby_test("gvl_test.rb");
}

/// `PromptConfig.stream`: deltas, the Enumerator form, and break / exception / Timeout /
/// Thread#kill closing the connection (and `complete` under Timeout and Thread#kill).
#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_streaming_and_interrupts() {
    run_ruby_test("stream_test.rb");
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_fork_safety() {
    run_ruby_test("fork_test.rb");
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_rails_integration() {
    run_ruby_test("rails_test.rb");
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_puma_cluster() {
    run_ruby_test("puma_test.rb");
}

/// The README's ActionController::Live example under Puma, read by Net::HTTP in chunks; a
/// client that disconnects cancels the provider stream.
#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_rails_live_streaming_under_puma() {
    run_ruby_test("rails_stream_test.rb");
}

#[test]
#[cfg_attr(
    any(pc_missing_ruby_ext_toolchain, pc_missing_redis),
    ignore = "needs ruby, Ruby's headers, make, libclang and redis-server (see the notice from build.rs)"
)]
fn ruby_redis_state_backend() {
    run_ruby_test("redis_state_test.rb");
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_subject_id() {
    run_ruby_test("subject_id_test.rb");
}

/// Issue 13: `messages:` on resolve, complete and stream; InvalidMessages with index and field;
/// `Completion#data`, `#tool_calls`, `#repairs` and the tool loop's history turns.
#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_history_data_and_tool_calls() {
    run_ruby_test("history_test.rb");
}

/// Issue 14: `PromptConfig.evaluate` and its EvalReport, the exceptions, the GVL released
/// during a run, `rake prompt_config:eval[feature]`, `assert_prompt_eval` and the RSpec matcher
/// `pass_prompt_eval` (run through rspec when Debian's ruby-rspec is installed; CI installs it).
#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_evaluate_rake_task_and_test_helpers() {
    run_ruby_test("eval_test.rb");
}

/// Issue 15: `traceparent:` on resolve, complete and stream reaches the provider; without it the
/// current span of the opentelemetry-api gem (a stand-in module in the test) is joined; an
/// explicit one wins; a malformed one is InvalidArgument naming it; `configure(otlp: ...)`.
#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_trace_context_and_otlp_settings() {
    run_ruby_test("tracing_test.rb");
}

#[test]
#[cfg_attr(
    pc_missing_ruby_ext_toolchain,
    ignore = "needs ruby, Ruby's headers, make and libclang (see the notice from build.rs)"
)]
fn ruby_gem_packaging() {
    run_ruby_test("packaging_test.rb");
}
