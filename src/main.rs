//! The `prompt-config` command line tool: validate configs, resolve a feature for a user, call
//! its model chain, run the demo, analyse telemetry, and release or roll back prompt versions.

mod cli;

fn main() {
    // `args_os`, not `args`: a non-UTF-8 argument is the parser's usage error, not a panic.
    let code = cli::run(std::env::args_os().skip(1));
    std::process::exit(code);
}
