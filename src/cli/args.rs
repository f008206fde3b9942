//! A small argument parser: positional words, `--flag`, `--option VALUE` / `--option=VALUE`,
//! repeatable options. Enough for our commands without a parser dependency's compile time.

use std::collections::HashMap;

/// Parsed command-line arguments.
#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    options: HashMap<String, Vec<String>>,
    flags: Vec<String>,
}

/// Options that take a value; anything else starting with `--` is a flag.
const VALUED: &[&str] = &[
    "config",
    "prompts",
    "user",
    "attr",
    "var",
    "vars",
    "version",
    "to",
    "telemetry",
    "requests",
    "by",
    "since",
];

impl Args {
    pub fn parse(raw: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut args = Args::default();
        let mut raw = raw.into_iter();
        while let Some(word) = raw.next() {
            let Some(name) = word.strip_prefix("--") else {
                args.positional.push(word);
                continue;
            };
            let (name, inline) = match name.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (name.to_string(), None),
            };
            if VALUED.contains(&name.as_str()) {
                let value = match inline {
                    Some(value) => value,
                    None => raw
                        .next()
                        .ok_or_else(|| format!("--{name} needs a value"))?,
                };
                args.options.entry(name).or_default().push(value);
            } else if inline.is_some() {
                return Err(format!("--{name} takes no value"));
            } else {
                args.flags.push(name);
            }
        }
        Ok(args)
    }

    /// The last value of `--name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.options
            .get(name)
            .and_then(|values| values.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable `--name`.
    pub fn values(&self, name: &str) -> &[String] {
        self.options
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|flag| flag == name)
    }

    /// Fails on options the command does not know, so typos do not pass silently.
    pub fn allow(&self, options: &[&str], flags: &[&str]) -> Result<(), String> {
        let unknown_option = self
            .options
            .keys()
            .find(|name| !options.contains(&name.as_str()));
        let unknown_flag = self
            .flags
            .iter()
            .find(|name| !flags.contains(&name.as_str()));
        match unknown_option.or(unknown_flag) {
            Some(name) => Err(format!("unknown option --{name}")),
            None => Ok(()),
        }
    }
}
