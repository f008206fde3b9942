//! Finds the tools the binding test suites need (Ruby and what builds the gem, a C and a C++
//! compiler, valgrind, and `redis-server` / `redis-cli` for the shared-state tests) and tells the tests which are missing, so a suite that cannot run is
//! reported as `ignored` in cargo's summary instead of passing without running (issue 9).
//!
//! For each missing tool it sets a `pc_missing_*` cfg, which the tests use as
//! `#[cfg_attr(pc_missing_ruby, ignore = "...")]`, and prints one notice on its own line
//! (`warning: prompt_config@...: ...`, shown by every cargo command). With `CI` set (as CI
//! services do; anything but empty, `0` or `false`) no cfg is set: a missing tool makes its
//! tests fail, so CI never goes green without the Ruby and C suites.
//!
//! Only tests read these cfgs; the library is the same with or without the tools. The probes
//! run when `build.rs`, `PATH`, `CI` or a tool variable changes, and when a directory on `PATH`
//! changes while a tool is missing (installing it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Every cfg this script may set.
const CFGS: &[&str] = &[
    "pc_missing_ruby",
    "pc_missing_ruby_ext_toolchain",
    "pc_missing_cc",
    "pc_missing_cxx",
    "pc_missing_valgrind",
    "pc_missing_redis",
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for variable in [
        "CI",
        "PATH",
        "RUBY",
        "CC",
        "CXX",
        "LIBCLANG_PATH",
        "REDIS_SERVER",
        "REDIS_CLI",
    ] {
        println!("cargo::rerun-if-env-changed={variable}");
    }
    for cfg in CFGS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }

    // The vendored copy of this crate inside the gem has no tests: nothing to probe for.
    if !Path::new("tests/c_abi.rs").is_file() {
        return;
    }
    let ci = std::env::var("CI").is_ok_and(|value| !matches!(value.trim(), "" | "0" | "false"));
    // (cfgs to set, why, which tests): one notice per missing tool.
    let mut missing: Vec<(&[&str], String, &str)> = Vec::new();

    let ruby = env_or("RUBY", "ruby");
    match ruby_headers(&ruby) {
        Err(reason) => missing.push((
            &["pc_missing_ruby", "pc_missing_ruby_ext_toolchain"],
            reason,
            "tests/ruby_gem.rs and the fiddle test of tests/c_abi.rs",
        )),
        Ok(headers) => {
            if let Some(reason) = ext_toolchain_problem(&headers) {
                missing.push((
                    &["pc_missing_ruby_ext_toolchain"],
                    reason,
                    "tests/ruby_gem.rs",
                ));
            }
        }
    }
    let cc = env_or("CC", "cc");
    if !runs(&cc, "--version") {
        missing.push((
            &["pc_missing_cc"],
            format!("the C compiler `{cc}` was not found (set CC; Debian: apt-get install gcc)"),
            "the C programs of tests/c_abi.rs",
        ));
    }
    let cxx = env_or("CXX", "c++");
    if !runs(&cxx, "--version") {
        missing.push((
            &["pc_missing_cxx"],
            format!(
                "the C++ compiler `{cxx}` was not found (set CXX; Debian: apt-get install g++)"
            ),
            "the C++ check of tests/c_abi.rs",
        ));
    }
    if !runs("valgrind", "--version") {
        missing.push((
            &["pc_missing_valgrind"],
            "valgrind was not found (Debian: apt-get install valgrind)".to_string(),
            "the leak checks of tests/c_abi.rs",
        ));
    }

    // The shared-state tests start their own servers (tests/support/redis_server.rs).
    let redis_server = env_or("REDIS_SERVER", "redis-server");
    let redis_cli = env_or("REDIS_CLI", "redis-cli");
    if !runs(&redis_server, "--version") || !runs(&redis_cli, "--version") {
        missing.push((
            &["pc_missing_redis"],
            format!(
                "`{redis_server}` or `{redis_cli}` was not found (set REDIS_SERVER / REDIS_CLI; \
                 Debian: apt-get install redis-server redis-tools)"
            ),
            "the Redis tests of tests/state",
        ));
    }

    for (cfgs, reason, tests) in &missing {
        if ci {
            println!("cargo::warning={reason}: CI is set, so {tests} will fail");
        } else {
            for cfg in *cfgs {
                println!("cargo::rustc-cfg={cfg}");
            }
            println!("cargo::warning={reason}: {tests} are ignored (CI=true makes this a failure)");
        }
    }
    if !missing.is_empty() {
        // Installing a tool adds a file to a directory on PATH: probe again then.
        for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
            if dir.is_dir() {
                println!("cargo::rerun-if-changed={}", dir.display());
            }
        }
    }
}

fn env_or(variable: &str, default: &str) -> String {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// True when `program argument` starts and exits 0.
fn runs(program: &str, argument: &str) -> bool {
    Command::new(program)
        .arg(argument)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// The directory of Ruby's C headers, or why Ruby cannot be used.
fn ruby_headers(ruby: &str) -> Result<PathBuf, String> {
    let output = Command::new(ruby)
        .args(["-rrbconfig", "-e", "print RbConfig::CONFIG['rubyhdrdir']"])
        .output()
        .map_err(|_| {
            format!("`{ruby}` was not found (set RUBY; Debian: apt-get install ruby ruby-dev)")
        })?;
    if !output.status.success() {
        return Err(format!(
            "`{ruby} -rrbconfig` failed (set RUBY to a working Ruby)"
        ));
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&output.stdout).trim(),
    ))
}

/// Why the gem's native extension cannot be built here, if it cannot.
fn ext_toolchain_problem(headers: &Path) -> Option<String> {
    if !headers.join("ruby.h").is_file() {
        return Some(format!(
            "Ruby's headers are missing ({}/ruby.h; Debian: apt-get install ruby-dev)",
            headers.display()
        ));
    }
    if !runs("make", "--version") {
        return Some("make was not found (Debian: apt-get install make)".to_string());
    }
    if !libclang_present() {
        return Some(
            "libclang was not found (bindgen needs it; set LIBCLANG_PATH; Debian: apt-get \
             install libclang-dev)"
                .to_string(),
        );
    }
    None
}

/// True when bindgen (through rb-sys) will find libclang.
fn libclang_present() -> bool {
    if std::env::var_os("LIBCLANG_PATH").is_some() {
        return true;
    }
    let is_libclang = |path: &Path| {
        path.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| {
                name.starts_with("libclang") && (name.contains(".so") || name.ends_with(".dylib"))
            })
    };
    let has_libclang = |dir: &Path| {
        std::fs::read_dir(dir)
            .is_ok_and(|entries| entries.flatten().any(|entry| is_libclang(&entry.path())))
    };
    let llvm_dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
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
                .collect()
        })
        .unwrap_or_default();
    llvm_dirs.iter().any(|dir| has_libclang(dir))
        || [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/local/lib",
            "/opt/homebrew/opt/llvm/lib",
            "/usr/local/opt/llvm/lib",
        ]
        .iter()
        .any(|dir| has_libclang(Path::new(dir)))
}
