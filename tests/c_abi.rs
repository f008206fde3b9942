//! The C ABI from outside the crate: the checked-in header equals what cbindgen generates, the
//! C programs under `tests/c/` compile with the system C compiler against both the shared and
//! the static library and pass (and under valgrind, when installed, without leaks or invalid
//! accesses), the header works from C++, and Ruby's stdlib fiddle drives the shared library
//! (when `ruby` is installed). Only the mock provider is used: nothing reaches the network.
//!
//! A test whose tool is missing (a C or C++ compiler, valgrind, ruby) is reported as ignored,
//! with one notice from `build.rs`; with `CI` set it runs, and fails.
//!
//! Regenerate the header after changing `src/c_api/`:
//! `PC_UPDATE_HEADER=1 cargo test --test c_abi header`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "support/eval.rs"]
mod eval;
#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/http_server.rs"]
mod http_server;
#[path = "support/one_feature.rs"]
mod one_feature;
#[path = "support/redis_server.rs"]
mod redis_server;
#[path = "support/temp_dir.rs"]
mod temp_dir;

use redis_server::RedisServer;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const HEADER: &str = "include/prompt_config.h";

/// Prints straight to the test's stderr, past libtest's capture, on a line of its own (libtest
/// has already written `test name ... ` without a newline).
fn notice(message: &str) {
    let _ = writeln!(std::io::stderr(), "\nc_abi: {message}");
}

fn root() -> &'static Path {
    Path::new(ROOT)
}

// ---------------------------------------------------------------------------------------------
// The header

fn generate_header() -> String {
    let config =
        cbindgen::Config::from_file(root().join("cbindgen.toml")).expect("cbindgen.toml parses");
    // Parsing from src/lib.rs (following its `mod` declarations) gives the same header as
    // `with_crate`, without running `cargo metadata`, which may download every platform's
    // dependencies.
    let bindings = cbindgen::Builder::new()
        .with_src(root().join("src/lib.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut header = Vec::new();
    bindings.write(&mut header);
    String::from_utf8(header).expect("the header is UTF-8")
}

#[test]
fn header_matches_cbindgen_output() {
    let generated = generate_header();
    let path = root().join(HEADER);
    if std::env::var_os("PC_UPDATE_HEADER").is_some() {
        fs::write(&path, &generated).expect("write the header");
        notice(&format!("wrote {}", path.display()));
        return;
    }
    let checked_in = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{HEADER} differs from what cbindgen generates from src/c_api/; regenerate it with \
         `PC_UPDATE_HEADER=1 cargo test --test c_abi header` and commit it.\n--- generated ---\n\
         {generated}"
    );
}

#[test]
fn header_has_guard_cpp_guards_docs_and_every_export() {
    let header = fs::read_to_string(root().join(HEADER)).expect("the header exists");
    for needle in [
        "#ifndef PROMPT_CONFIG_H",
        "#define PROMPT_CONFIG_H",
        "#ifdef __cplusplus\nextern \"C\" {",
        "typedef struct pc_engine pc_engine;",
        "typedef struct pc_cancel_token pc_cancel_token;",
        "typedef int (*pc_stream_callback)(const char *delta,",
        "typedef enum pc_status {",
        "PC_OK = 0,",
        "PC_INVALID_ARGUMENT = 901,",
        "PC_PANIC = 902,",
        "// Opens an engine",
    ] {
        assert!(header.contains(needle), "the header lacks {needle:?}");
    }
    for function in [
        "pc_engine_open",
        "pc_resolve",
        "pc_complete",
        "pc_stream",
        "pc_stream_with",
        "pc_complete_with",
        "pc_cancel_token_new",
        "pc_cancel",
        "pc_cancel_token_free",
        "pc_feedback",
        "pc_reload",
        "pc_metrics_json",
        "pc_prometheus_text",
        "pc_after_fork",
        "pc_string_free",
        "pc_engine_close",
        "pc_version",
        "pc_status_kind",
        "pc_evaluate",
    ] {
        assert!(
            header.contains(&format!(" {function}(")),
            "the header lacks {function}"
        );
    }
    assert!(!header.contains("pc_test_panic"), "the test hook stays out");
    // Every error kind has its status, numbered by the kind's fixed code.
    for kind in prompt_config::ErrorKind::ALL {
        let name = format!("PC_{} = {},", kind.as_str().to_uppercase(), kind.code());
        assert!(header.contains(&name), "the header lacks {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// The libraries

struct Libraries {
    dir: PathBuf,
    shared: PathBuf,
    archive: PathBuf,
}

/// The shared and static libraries of the profile this test was built with. `cargo test`
/// builds the library once for all its crate types: the `.so` and `.a` land in
/// `target/<profile>/deps/` beside the `.rlib` this test links, but are copied up to
/// `target/<profile>/` only by `cargo build`. So the fresh ones in `deps/` are preferred, then
/// those of `target/<profile>/` when they are not older than the `.rlib`; failing both,
/// `cargo build --lib --features test-hooks` builds them.
///
/// The C programs and the fiddle script call the test hook `pc_test_panic`, which only the
/// `test-hooks` feature exports (`cargo test` turns it on through the crate's dev-dependency on
/// itself). A plain `cargo build` writes the same unhashed file names in `deps/` without it, so a
/// library that lacks the hook is never used: it is rebuilt with the feature.
fn libraries() -> &'static Libraries {
    static LIBRARIES: OnceLock<Libraries> = OnceLock::new();
    LIBRARIES.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test's own path");
        // target/<profile>/deps/c_abi-<hash>
        let deps = exe.parent().expect("target/<profile>/deps");
        let profile_dir = deps.parent().expect("target/<profile>");
        let rlib = modified(&deps.join("libprompt_config.rlib"));
        let fresh = |dir: &Path| {
            let (shared, archive) = (
                modified(&dir.join("libprompt_config.so")),
                modified(&dir.join("libprompt_config.a")),
            );
            shared.is_some()
                && archive.is_some()
                && shared >= rlib
                && archive >= rlib
                && has_test_hooks(&dir.join("libprompt_config.so"))
        };
        let dir = if fresh(deps) {
            deps
        } else if fresh(profile_dir) {
            profile_dir
        } else {
            build_libraries(profile_dir);
            profile_dir
        };
        let libraries = Libraries {
            dir: dir.to_path_buf(),
            shared: dir.join("libprompt_config.so"),
            archive: dir.join("libprompt_config.a"),
        };
        assert!(
            libraries.shared.exists(),
            "{} is missing",
            libraries.shared.display()
        );
        assert!(
            libraries.archive.exists(),
            "{} is missing",
            libraries.archive.display()
        );
        libraries
    })
}

/// Whether the shared library exports `pc_test_panic` (its `.a` comes from the same build). When
/// `nm` is missing the library is taken as it is.
fn has_test_hooks(shared: &Path) -> bool {
    match Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(shared)
        .stderr(Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => {
            String::from_utf8_lossy(&output.stdout).contains(" pc_test_panic")
        }
        _ => true,
    }
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
}

fn build_libraries(profile_dir: &Path) {
    notice(
        "building the shared and static libraries with `cargo build --lib --features test-hooks`",
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root())
        .args(["build", "--lib", "--features", "test-hooks"]);
    match profile_dir.file_name().and_then(|name| name.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(other) => {
            command.args(["--profile", other]);
        }
    }
    let parent = profile_dir.parent().expect("a target directory");
    if parent.join("CACHEDIR.TAG").exists() {
        command.arg("--target-dir").arg(parent);
    } else if let (Some(target_dir), Some(triple)) = (parent.parent(), parent.file_name()) {
        // target/<triple>/<profile>
        command
            .arg("--target-dir")
            .arg(target_dir)
            .arg("--target")
            .arg(triple);
    }
    let status = command.status().expect("run cargo build --lib");
    assert!(status.success(), "cargo build --lib failed");
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("c_abi")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

// ---------------------------------------------------------------------------------------------
// Compiling and running

#[derive(Debug, Clone, Copy)]
enum Linkage {
    Shared,
    Static,
}

/// What `cargo rustc -- --print native-static-libs` lists for this crate on Linux.
const NATIVE_STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

fn compiler() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

/// Compiles `source` (C or C++ by `compiler`) against the library; returns the binary.
fn compile(compiler: &str, source: &Path, linkage: Linkage, output: &Path, flags: &[&str]) {
    let libraries = libraries();
    let mut command = Command::new(compiler);
    command
        .args(flags)
        .args(["-Wall", "-Wextra", "-Werror", "-g", "-O0", "-pthread"])
        .arg("-I")
        .arg(root().join("include"))
        .arg(source)
        .arg("-o")
        .arg(output);
    match linkage {
        Linkage::Shared => {
            command
                .arg("-L")
                .arg(&libraries.dir)
                .arg("-lprompt_config")
                .arg(format!("-Wl,-rpath,{}", libraries.dir.display()))
                // DT_RPATH, searched before LD_LIBRARY_PATH: `cargo test` puts
                // `target/<profile>/` on it, where a `cargo build` library without the test
                // hooks may sit.
                .arg("-Wl,--disable-new-dtags");
        }
        Linkage::Static => {
            command.arg(&libraries.archive).args(NATIVE_STATIC_LIBS);
        }
    }
    let result = command.output().unwrap_or_else(|error| {
        panic!(
            "cannot run the compiler {compiler}: {error} (build.rs marks this test ignored when \
             it is missing, unless CI is set)"
        )
    });
    assert!(
        result.status.success(),
        "{compiler} failed for {} ({linkage:?}):\n{}{}",
        source.display(),
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `command` with stdout and stderr in files, killing it after `limit`.
fn run(mut command: Command, logs: &Path, limit: Duration) -> Run {
    let stdout_path = logs.with_extension("stdout");
    let stderr_path = logs.with_extension("stderr");
    command
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(fs::File::create(&stderr_path).expect("stderr file"));
    let started = Instant::now();
    let mut child = command.spawn().unwrap_or_else(|error| {
        panic!(
            "cannot start {command:?}: {error} (build.rs marks a test ignored when its tool is \
             missing, unless CI is set)"
        )
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the program") {
            break Some(status);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {limit:?})"));
    }
    Run {
        success: status.is_some_and(|status| status.success()),
        stdout: fs::read_to_string(&stdout_path).unwrap_or_default(),
        stderr,
        elapsed: started.elapsed(),
    }
}

/// Compiles `tests/c/<program>.c` against both libraries into `dir`; returns the binaries.
fn compile_program(program: &str, dir: &Path) -> Vec<(Linkage, PathBuf)> {
    let source = root().join("tests/c").join(format!("{program}.c"));
    [Linkage::Shared, Linkage::Static]
        .into_iter()
        .map(|linkage| {
            let binary = dir.join(format!("{program}_{linkage:?}").to_lowercase());
            compile(
                &compiler(),
                &source,
                linkage,
                &binary,
                &["-std=c11", "-pedantic"],
            );
            (linkage, binary)
        })
        .collect()
}

/// Compiles `tests/c/<program>.c` against both libraries and runs both builds.
fn c_program(program: &str) {
    c_program_with_args(program, &[]);
}

/// [`c_program`], passing `extra` after the program's ROOT and SCRATCH arguments.
fn c_program_with_args(program: &str, extra: &[&Path]) {
    let dir = scratch(program);
    for (linkage, binary) in compile_program(program, &dir) {
        let mut command = Command::new(&binary);
        command
            .arg(root())
            .arg(&dir)
            .args(extra)
            .current_dir(root());
        let outcome = run(command, &binary, Duration::from_secs(120));
        assert!(
            outcome.success,
            "{program} ({linkage:?}) failed:\n{}{}",
            outcome.stdout, outcome.stderr
        );
        notice(&format!(
            "{program} ({linkage:?}) passed in {:.1?}: {}",
            outcome.elapsed,
            outcome.stdout.lines().last().unwrap_or("")
        ));
    }
}

/// Compiles `tests/c/<program>.c` against both libraries and runs both builds under valgrind:
/// no definite or possible leak, no invalid access.
fn c_program_under_valgrind(program: &str) {
    c_program_under_valgrind_with_args(program, &[]);
}

/// [`c_program_under_valgrind`], passing `extra` after the program's ROOT and SCRATCH
/// arguments.
fn c_program_under_valgrind_with_args(program: &str, extra: &[&Path]) {
    let dir = scratch(&format!("{program}_valgrind"));
    for (linkage, binary) in compile_program(program, &dir) {
        let mut command = Command::new("valgrind");
        command
            .args([
                "--leak-check=full",
                "--error-exitcode=1",
                // Deep enough for every stack to reach the static the suppressions name.
                "--num-callers=500",
                "--errors-for-leak-kinds=definite,possible",
                "--show-leak-kinds=definite,possible",
            ])
            .arg(format!(
                "--suppressions={}",
                root().join("tests/c/valgrind.supp").display()
            ));
        if program == "fork" {
            // The fork child's leak report is expected (see tests/c/fork.c); the parent's counts.
            command
                .arg("--child-silent-after-fork=yes")
                .env("PC_TEST_UNDER_VALGRIND", "1");
        }
        if program == "stream" {
            // Everything runs many times slower: "at once" gets a wider bound (tests/c/stream.c).
            command.env("PC_TEST_UNDER_VALGRIND", "1");
        }
        command
            .arg(&binary)
            .arg(root())
            .arg(&dir)
            .args(extra)
            .current_dir(root());
        let logs = dir.join(format!("{program}_{linkage:?}_valgrind").to_lowercase());
        let outcome = run(command, &logs, Duration::from_secs(600));
        assert!(
            outcome.success,
            "{program} ({linkage:?}) under valgrind failed (is valgrind installed? build.rs \
             marks this test ignored when it is missing, unless CI is set):\n{}{}",
            outcome.stdout, outcome.stderr
        );
        let summary = outcome
            .stderr
            .lines()
            .filter(|line| line.contains("ERROR SUMMARY") || line.contains("definitely lost"))
            .map(|line| line.split("== ").nth(1).unwrap_or(line))
            .collect::<Vec<_>>()
            .join("; ");
        notice(&format!(
            "{program} ({linkage:?}) under valgrind passed in {:.1?}: {summary}",
            outcome.elapsed
        ));
    }
}

#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn c_basic_open_resolve_complete_feedback_metrics_reload() {
    c_program("basic");
}

#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_valgrind),
    ignore = "needs a C compiler and valgrind (see the notice from build.rs)"
)]
fn c_basic_under_valgrind_leaks_nothing() {
    c_program_under_valgrind("basic");
}

#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn c_errors_every_error_path() {
    c_program("errors");
}

#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_valgrind),
    ignore = "needs a C compiler and valgrind (see the notice from build.rs)"
)]
fn c_errors_under_valgrind_leak_nothing() {
    c_program_under_valgrind("errors");
}

#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn c_threads_share_one_engine() {
    c_program("threads");
}

#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_valgrind),
    ignore = "needs a C compiler and valgrind (see the notice from build.rs)"
)]
fn c_threads_under_valgrind_leak_nothing() {
    c_program_under_valgrind("threads");
}

#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn c_fork_after_fork() {
    c_program("fork");
}

#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_valgrind),
    ignore = "needs a C compiler and valgrind (see the notice from build.rs)"
)]
fn c_fork_under_valgrind_leaks_nothing() {
    c_program_under_valgrind("fork");
}

#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn c_stream_callback_stop_null_callback_and_cancel_from_another_thread() {
    c_program("stream");
}

#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_valgrind),
    ignore = "needs a C compiler and valgrind (see the notice from build.rs)"
)]
fn c_stream_under_valgrind_leaks_nothing() {
    c_program_under_valgrind("stream");
}

/// Issue 13: the request JSON's `messages` (conversation history), the completion JSON's
/// `data`, `tool_calls` and `repairs`, and broken histories as `PC_INVALID_MESSAGES`.
#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn c_history_messages_in_the_request_json() {
    c_program("history");
}

#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_valgrind),
    ignore = "needs a C compiler and valgrind (see the notice from build.rs)"
)]
fn c_history_under_valgrind_leaks_nothing() {
    c_program_under_valgrind("history");
}

/// Issue 14: the fixture `tests/c/eval.c` runs on, in a temporary folder: the shipped
/// configuration with mocks that answer at once, one case of its own in
/// `config/evals/career_path_navigator/`, and `datasets/` with `pass.jsonl` (two cases every
/// answer meets), `fail.jsonl` (one that passes, `never-met` that does not) and `broken.jsonl`
/// (line 2 names an assertion type that does not exist).
fn eval_fixture() -> fixture::Fixture {
    let fixture = eval::fast_mock_fixture();
    let context = serde_json::json!({"user_id": "u1", "variables": fixture::profile()});
    let case = |id: &str, assertions: serde_json::Value| {
        serde_json::json!({"id": id, "context": context, "assertions": assertions}).to_string()
    };
    let met = serde_json::json!([{"type": "max_tokens", "value": 1_000_000},
                                 {"type": "not_contains", "value": "lorem ipsum"}]);
    let unmet =
        serde_json::json!([{"type": "contains", "value": "a phrase the mock never writes"}]);
    let write = |path: PathBuf, lines: &[String]| {
        fs::create_dir_all(path.parent().expect("a folder")).expect("create the folder");
        fs::write(&path, lines.join("\n") + "\n").expect("write a dataset");
    };
    // The shipped datasets (if any) make way for one case the program looks for.
    let evals = fixture.config_dir().join("evals");
    let _ = fs::remove_dir_all(&evals);
    write(
        evals.join("career_path_navigator/own.jsonl"),
        &[case("from-the-feature-folder", met.clone())],
    );
    let datasets = fixture.root.join("datasets");
    write(
        datasets.join("pass.jsonl"),
        &[case("first", met.clone()), case("second", met.clone())],
    );
    write(
        datasets.join("fail.jsonl"),
        &[case("kept", met.clone()), case("never-met", unmet)],
    );
    write(
        datasets.join("broken.jsonl"),
        &[
            case("fine", met),
            case("broken", serde_json::json!([{"type": "no_such_type"}])),
        ],
    );
    fixture
}

/// Issue 14: `pc_evaluate` from C (see `tests/c/eval.c`).
#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn c_eval_datasets_reports_and_refusals() {
    let fixture = eval_fixture();
    c_program_with_args("eval", &[&fixture.root]);
}

#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_valgrind),
    ignore = "needs a C compiler and valgrind (see the notice from build.rs)"
)]
fn c_eval_under_valgrind_leaks_nothing() {
    let fixture = eval_fixture();
    c_program_under_valgrind_with_args("eval", &[&fixture.root]);
}

/// Issue 11: `"state": {"backend": "redis", ...}` in the options JSON really puts the engine's
/// fleet state in that Redis: after three completions from C, the budget keys live under the
/// program's key prefix (and nothing else wrote there).
#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_redis),
    ignore = "needs a C compiler and redis-server (see the notice from build.rs)"
)]
fn c_state_backend_redis_keeps_fleet_state_in_redis() {
    let dir = scratch("redis_state");
    for (linkage, binary) in compile_program("redis_state", &dir) {
        let redis = RedisServer::start();
        let prefix = format!("cabi_{linkage:?}").to_lowercase();
        let mut command = Command::new(&binary);
        command
            .arg(root())
            .arg(redis.url())
            .arg(&prefix)
            .current_dir(root());
        let outcome = run(command, &binary, Duration::from_secs(120));
        assert!(
            outcome.success,
            "redis_state ({linkage:?}) failed:\n{}{}",
            outcome.stdout, outcome.stderr
        );
        let keys = redis.cli(&["--scan", "--pattern", &format!("{prefix}:*")]);
        assert!(
            keys.lines().any(|key| key.contains(":budget")),
            "no budget key under {prefix}: in Redis after completions with the redis backend \
             ({linkage:?}); keys: {keys:?}"
        );
    }
}

/// Issue 15: the request JSON's `traceparent` reaches the provider. `tests/c/trace.c` makes one
/// completion and one stream with the W3C example's trace per build (shared and static) against
/// a loopback OpenAI-compatible server, and checks that malformed ones and a bad `otlp` option
/// are `PC_INVALID_ARGUMENT` naming them; here each request the server received must carry a
/// `traceparent` in the caller's trace whose parent is the attempt's span, not the caller's.
#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn c_trace_context_reaches_the_provider_and_a_malformed_one_is_refused() {
    let (server, config) = trace_provider();
    c_program_with_args("trace", &[config.root.as_path()]);
    let requests = server.requests();
    // Two builds, each one completion and one stream; the refused calls never reached it.
    assert_eq!(requests.len(), 4, "{requests:#?}");
    for request in &requests {
        let header = request.header("traceparent").unwrap_or_default();
        assert!(
            header.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && header.ends_with("-01"),
            "{header:?} is not in the caller's trace"
        );
        assert!(
            !header.contains("00f067aa0ba902b7"),
            "{header:?} names the caller's span, not the attempt's"
        );
    }
}

#[test]
#[cfg_attr(
    any(pc_missing_cc, pc_missing_valgrind),
    ignore = "needs a C compiler and valgrind (see the notice from build.rs)"
)]
fn c_trace_under_valgrind_leaks_nothing() {
    let (_server, config) = trace_provider();
    c_program_under_valgrind_with_args("trace", &[config.root.as_path()]);
}

/// A loopback OpenAI-compatible server (a JSON answer, or an event stream to `"stream": true`)
/// and the one-feature configuration `tests/c/trace.c` calls it with.
fn trace_provider() -> (http_server::TestServer, one_feature::OneFeature) {
    use http_server::{Reply, TestServer};
    use serde_json::json;
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        let event = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {event}\n\n")
    };
    let events = vec![
        chunk(json!({"role": "assistant", "content": "Gre"}), json!(null)),
        chunk(json!({"content": "en."}), json!("stop")),
        "data: [DONE]\n\n".to_string(),
    ];
    let answer = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Green."}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2}});
    let server = TestServer::start_answering(move |request| {
        if request.json()["stream"] == json!(true) {
            Reply::events(events.clone())
        } else {
            Reply::json(200, &answer)
        }
    });
    let provider = json!({"kind": "openai_compatible", "base_url": format!("{}/v1", server.url()),
        "retry": {"max_attempts": 1},
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}});
    let config =
        one_feature::OneFeature::new(&json!({"providers": {"local": provider}}), "local", "m");
    (server, config)
}

#[test]
#[cfg_attr(
    pc_missing_cxx,
    ignore = "needs a C++ compiler (c++ or $CXX; see the notice from build.rs)"
)]
fn header_works_from_cpp() {
    let dir = scratch("cpp");
    let source = dir.join("from_cpp.cpp");
    fs::write(
        &source,
        r#"#include "prompt_config.h"
#include <cstdio>
#include <cstring>

int main() {
    pc_engine *engine = nullptr;
    char *error = nullptr;
    pc_status status = pc_engine_open("{\"confg_dir\": 1}", &engine, &error);
    bool ok = status == PC_INVALID_ARGUMENT && engine == nullptr && error != nullptr &&
              std::strstr(error, "\"kind\":\"invalid_argument\"") != nullptr;
    pc_string_free(error);
    pc_engine_close(engine);
    std::printf("%s %s\n", pc_version(), ok ? "ok" : "failed");
    return ok ? 0 : 1;
}
"#,
    )
    .expect("write the C++ program");
    let cpp = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    let binary = dir.join("from_cpp");
    compile(
        &cpp,
        &source,
        Linkage::Shared,
        &binary,
        &["-std=c++11", "-pedantic"],
    );
    let outcome = run(Command::new(&binary), &binary, Duration::from_secs(60));
    assert!(outcome.success, "{}{}", outcome.stdout, outcome.stderr);
}

// ---------------------------------------------------------------------------------------------
// The README's C example

/// The first fenced block of `language` after `heading` in README.md.
fn readme_block(heading: &str, language: &str) -> String {
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let section = &readme[readme.find(heading).expect("the C section")..];
    let fence = format!("```{language}\n");
    let start = section.find(&fence).expect("the block") + fence.len();
    section[start..][..section[start..].find("```").expect("its end")].to_string()
}

/// Issue 9: the README's C example used to write `example` into the checkout. Its build
/// commands, as written (only `cargo build` is left out and `target/release` points at the
/// libraries this test links), build and run the program outside the checkout, which gains no
/// file.
#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn readme_c_example_builds_and_runs_outside_the_checkout() {
    let heading = "## Using the library from C";
    let program = readme_block(heading, "c");
    let commands = readme_block(heading, "sh");
    assert!(
        commands.contains("mktemp -d"),
        "the README builds in a temporary folder:\n{commands}"
    );
    let dir = scratch("readme");
    fs::write(dir.join("example.c"), program).expect("write example.c");
    let script: String = commands
        .lines()
        .filter(|line| !line.trim_start().starts_with("cargo build"))
        .map(|line| {
            let libraries = libraries().dir.display().to_string();
            let line = line
                .replace("$(mktemp -d)", &format!("'{}'", dir.display()))
                .replace("$PWD/target/release", &libraries)
                .replace("target/release", &libraries);
            match line.strip_prefix("cc ") {
                Some(rest) => format!("{} {rest}", compiler()),
                None => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let listing = |path: &Path| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(path)
            .expect("list the checkout")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing(root());
    let mut command = Command::new("sh");
    // The README's commands link with a RUNPATH, which `cargo test`'s LD_LIBRARY_PATH would
    // override with `target/<profile>/`, where a stale `cargo build` library may sit: a user's
    // shell has no such path.
    command
        .args(["-e", "-c", &script])
        .current_dir(root())
        .env_remove("LD_LIBRARY_PATH");
    let outcome = run(
        command,
        &dir.join("readme_example"),
        Duration::from_secs(120),
    );
    assert!(
        outcome.success,
        "the README's C example failed:\n{script}\n{}{}",
        outcome.stdout, outcome.stderr
    );
    assert!(
        outcome.stdout.contains("completion: {"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("without variables: missing_variable"),
        "{}",
        outcome.stdout
    );
    assert_eq!(
        listing(root()),
        before,
        "the example left files in the checkout"
    );
}

/// The README's `pc_stream` example, as written, builds against the shared library and streams
/// the mock's answer to stdout, then prints `ok:` and the completion JSON.
#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn readme_stream_example_builds_and_streams() {
    let program = readme_block("### Streaming from C", "c");
    let dir = scratch("readme_stream");
    let source = dir.join("stream_example.c");
    fs::write(&source, program).expect("write stream_example.c");
    let binary = dir.join("stream_example");
    compile(
        &compiler(),
        &source,
        Linkage::Shared,
        &binary,
        &["-std=c11"],
    );
    let outcome = run(Command::new(&binary), &binary, Duration::from_secs(60));
    assert!(outcome.success, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        // The example's subject is in the JSON variant of cpn-json-output (2.2.0): the mock
        // streams its schema-valid JSON answer.
        outcome.stdout.starts_with("{\"paths\":[") && outcome.stdout.contains("\nok: {"),
        "{}",
        outcome.stdout
    );
}

/// Issue 14: the README's `pc_evaluate` example, as written, builds against the shared
/// library and, run in a folder holding a configuration (the eval fixture: mocks that answer at
/// once, one dataset in `config/evals/career_path_navigator/`), evaluates two versions and exits 0.
#[test]
#[cfg_attr(
    pc_missing_cc,
    ignore = "needs a C compiler (cc or $CC; see the notice from build.rs)"
)]
fn readme_eval_example_builds_and_evaluates() {
    let program = readme_block("### Evaluating from C", "c");
    let dir = scratch("readme_eval");
    let source = dir.join("eval_example.c");
    fs::write(&source, program).expect("write eval_example.c");
    let binary = dir.join("eval_example");
    compile(
        &compiler(),
        &source,
        Linkage::Shared,
        &binary,
        &["-std=c11"],
    );
    let fixture = eval_fixture();
    let mut command = Command::new(&binary);
    command.current_dir(&fixture.root);
    let outcome = run(command, &binary, Duration::from_secs(60));
    assert!(outcome.success, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("\"baseline\":\"2.0.0\",\"candidate\":\"3.0.0\"")
            && outcome
                .stdout
                .contains("\"id\":\"from-the-feature-folder\"")
            && outcome.stdout.ends_with("\npassed\n"),
        "{}",
        outcome.stdout
    );
}

// ---------------------------------------------------------------------------------------------
// Ruby's fiddle

#[test]
#[cfg_attr(
    pc_missing_ruby,
    ignore = "needs ruby (or $RUBY; see the notice from build.rs)"
)]
fn ruby_fiddle_smoke() {
    let ruby = std::env::var("RUBY").unwrap_or_else(|_| "ruby".to_string());
    let dir = scratch("ruby");
    let mut command = Command::new(&ruby);
    command
        .arg(root().join("tests/ruby/fiddle_smoke.rb"))
        .arg(&libraries().shared)
        .arg(root())
        .current_dir(root());
    let outcome = run(command, &dir.join("fiddle"), Duration::from_secs(120));
    assert!(
        outcome.success,
        "fiddle_smoke.rb failed:\n{}{}",
        outcome.stdout, outcome.stderr
    );
    assert!(
        outcome.stdout.contains("fiddle smoke: ok"),
        "{}",
        outcome.stdout
    );
    notice(&format!(
        "ruby fiddle passed in {:.1?}: {}",
        outcome.elapsed,
        outcome.stdout.lines().last().unwrap_or("")
    ));
}
