//! Runs the Ruby gem's minitest suite (`ruby/test/*_test.rb`) against the native extension
//! built from this checkout, so `cargo test` covers the gem wherever Ruby is installed (CI
//! installs Debian's ruby, ruby-dev, libclang-dev, ruby-railties and puma).
//!
//! The extension is compiled the way `gem install` does it: `ruby ext/prompt_config/extconf.rb`
//! writes a Makefile and `make` runs cargo, here into `target/tmp/ruby_gem/` (cargo's own target
//! folder for the ext crate is `target/tmp/ruby_gem/cargo`). Each test file then runs in its own
//! Ruby process, one at a time (the GVL test measures wall time). Without `ruby`, Ruby's headers,
//! make or libclang every test prints a notice on stderr and passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Why the suite cannot run here, or where the built extension is.
enum Setup {
    Skip(String),
    Ready { native_dir: PathBuf },
}

fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ruby_root() -> PathBuf {
    project_root().join("ruby")
}

fn ruby() -> String {
    std::env::var("RUBY").unwrap_or_else(|_| "ruby".to_string())
}

/// Written straight to stderr: libtest captures `eprintln!`, and a skip must be visible.
fn notice(message: &str) {
    let _ = writeln!(std::io::stderr(), "ruby_gem: {message}");
}

fn describe(output: &Output) -> String {
    format!(
        "exit status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The directory of Ruby's C headers, or why there is none.
fn ruby_headers() -> Result<PathBuf, String> {
    let output = Command::new(ruby())
        .args(["-rrbconfig", "-e", "print RbConfig::CONFIG['rubyhdrdir']"])
        .output()
        .map_err(|error| format!("`{}` cannot run ({error})", ruby()))?;
    if !output.status.success() {
        return Err(format!("`{}` failed: {}", ruby(), describe(&output)));
    }
    let headers = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    if headers.join("ruby.h").is_file() {
        Ok(headers)
    } else {
        Err(format!(
            "Ruby's headers are missing ({}/ruby.h; Debian: apt-get install ruby-dev)",
            headers.display()
        ))
    }
}

/// True when bindgen will find libclang.
fn libclang_present() -> bool {
    if std::env::var_os("LIBCLANG_PATH").is_some() {
        return true;
    }
    let is_libclang = |path: &Path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("libclang") && name.contains(".so"))
    };
    let has_libclang = |dir: &Path| {
        std::fs::read_dir(dir)
            .is_ok_and(|entries| entries.flatten().any(|entry| is_libclang(&entry.path())))
    };
    let llvm_dirs = std::fs::read_dir("/usr/lib")
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|name| name.to_str())
                        .is_some_and(|name| name.starts_with("llvm-"))
                })
                .map(|path| path.join("lib"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    llvm_dirs.iter().any(|dir| has_libclang(dir))
        || [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/local/lib",
        ]
        .iter()
        .any(|dir| has_libclang(Path::new(dir)))
}

/// Compiles the extension with extconf.rb and make, once per test binary.
fn build() -> Result<Setup, String> {
    if let Err(reason) = ruby_headers() {
        return Ok(Setup::Skip(reason));
    }
    if Command::new("make").arg("--version").output().is_err() {
        return Ok(Setup::Skip(
            "make was not found (extconf.rb writes a Makefile; Debian: apt-get install make)"
                .into(),
        ));
    }
    if !libclang_present() {
        return Ok(Setup::Skip(
            "libclang was not found (bindgen needs it; Debian: apt-get install libclang-dev)"
                .into(),
        ));
    }
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ruby_gem");
    let build_dir = work.join("build");
    std::fs::create_dir_all(&build_dir).map_err(|error| error.to_string())?;
    let extconf = ruby_root().join("ext/prompt_config/extconf.rb");
    let run = |command: &mut Command| -> Result<(), String> {
        let output = command
            .current_dir(&build_dir)
            .env("PROMPT_CONFIG_CARGO_TARGET_DIR", work.join("cargo"))
            .env("PROMPT_CONFIG_NO_RB_SYS", "1")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .output()
            .map_err(|error| format!("{command:?} cannot run: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{command:?} failed: {}", describe(&output)))
        }
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
    Ok(Setup::Ready { native_dir })
}

fn setup() -> &'static Result<Setup, String> {
    static SETUP: OnceLock<Result<Setup, String>> = OnceLock::new();
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
        Ok(Setup::Skip(reason)) => {
            notice(&format!("skipping {file}: {reason}"));
            return;
        }
        Err(error) => panic!("building the Ruby extension failed:\n{error}"),
        Ok(Setup::Ready { native_dir }) => native_dir,
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
    "errors_test.rb",
    "gvl_test.rb",
    "fork_test.rb",
    "rails_test.rb",
    "puma_test.rb",
    "packaging_test.rb",
    "subject_id_test.rb",
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
fn ruby_api() {
    run_ruby_test("api_test.rb");
}

#[test]
fn ruby_errors() {
    run_ruby_test("errors_test.rb");
}

#[test]
fn ruby_gvl_released_during_complete() {
    run_ruby_test("gvl_test.rb");
}

#[test]
fn ruby_fork_safety() {
    run_ruby_test("fork_test.rb");
}

#[test]
fn ruby_rails_integration() {
    run_ruby_test("rails_test.rb");
}

#[test]
fn ruby_puma_cluster() {
    run_ruby_test("puma_test.rb");
}

#[test]
fn ruby_subject_id() {
    run_ruby_test("subject_id_test.rb");
}

#[test]
fn ruby_gem_packaging() {
    run_ruby_test("packaging_test.rb");
}
