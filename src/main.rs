//! The `prompt-config` command line tool: validate configs, resolve a feature for a user, and
//! release or roll back prompt versions.

mod cli;

fn main() {
    let code = cli::run(std::env::args().skip(1));
    std::process::exit(code);
}
