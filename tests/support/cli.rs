//! Running the `prompt-config` binary in a test: in a fixture's folder, with the directory
//! variables removed, and with arguments that may not be UTF-8.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

use super::fixture::Fixture;

/// A profile with every variable the shipped feature's templates need.
pub const PROFILE: &str = r#"{"current_role":"Nurse","degree":"BSc Nursing","skills":["care"],"sector":"healthcare","goals":"data"}"#;

/// The binary, to run in `folder` with no `PROMPT_*_DIR`, Redis URL or API key from the
/// test's environment.
pub fn command(folder: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_prompt-config"));
    command
        .current_dir(folder)
        .env_remove("PROMPT_CONFIG_DIR")
        .env_remove("PROMPT_PROMPTS_DIR")
        .env_remove("PROMPT_CONFIG_REDIS_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY");
    command
}

/// Runs the binary with `args` in `folder` and collects its output.
pub fn run_in<S: AsRef<OsStr>>(folder: &Path, args: &[S]) -> Output {
    command(folder)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Runs the binary with `args` in the fixture's folder.
pub fn run(fixture: &Fixture, args: &[&str]) -> Output {
    run_in(&fixture.root, args)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
