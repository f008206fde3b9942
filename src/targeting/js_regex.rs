//! ECMAScript regular expressions (no flags, as GrowthBook's `$regex` compiles them) translated
//! to the Rust `regex` crate's syntax, keeping JS's ASCII meaning of `\\d \\w \\s \\b .` and
//! rejecting what JS rejects or Rust cannot express (back-references, look-around).

use std::fmt::Write as _;

use regex::Regex;

/// Compiles an ECMAScript (no flags) pattern into an equivalent Rust regex.
pub(super) fn compile_js_regex(pattern: &str) -> Result<Regex, String> {
    let translated = translate_js_regex(pattern)?;
    Regex::new(&translated).map_err(|e| {
        let text = e.to_string();
        let last = text.lines().last().unwrap_or_default().trim();
        last.strip_prefix("error: ").unwrap_or(last).to_owned()
    })
}

const JS_DIGIT: &str = "0-9";
const JS_WORD: &str = "0-9A-Za-z_";
const JS_SPACE: &str = r"\t\n\x0B\x0C\r\x20\xA0\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";

/// Rewrites JS-only syntax and the ASCII meaning of `\d \w \s \b .`; rejects
/// constructs JS would reject or that Rust cannot express (back-references).
fn translate_js_regex(src: &str) -> Result<String, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() + 16);
    let (mut i, mut in_class) = (0, false);
    while let Some(&c) = cs.get(i) {
        i += 1;
        match c {
            '\\' => {
                let Some(&e) = cs.get(i) else {
                    return Err("pattern ends with a lone backslash".into());
                };
                i += 1;
                match e {
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                        let set = match e.to_ascii_lowercase() {
                            'd' => JS_DIGIT,
                            'w' => JS_WORD,
                            _ => JS_SPACE,
                        };
                        let negated = e.is_ascii_uppercase();
                        if in_class && !negated {
                            out.push_str(set);
                        } else {
                            let _ = write!(out, "[{}{set}]", if negated { "^" } else { "" });
                        }
                        // JS (Annex B) reads `[\d-z]` as a union, not a range.
                        if in_class && cs.get(i) == Some(&'-') {
                            out.push_str(r"\-");
                            i += 1;
                        }
                    }
                    'b' if in_class => out.push_str(r"\x08"),
                    'b' | 'B' if !in_class => {
                        let _ = write!(out, r"(?-u:\{e})");
                    }
                    't' | 'n' | 'r' | 'f' | 'v' => {
                        out.push('\\');
                        out.push(e);
                    }
                    '0' if !cs.get(i).is_some_and(char::is_ascii_digit) => out.push_str(r"\x00"),
                    '0'..='9' => {
                        return Err("back-references and octal escapes are not supported".into());
                    }
                    'k' if cs.get(i) == Some(&'<') => {
                        return Err("named back-references are not supported".into());
                    }
                    'c' => match cs.get(i) {
                        Some(letter) if letter.is_ascii_alphabetic() => {
                            i += 1;
                            push_code(&mut out, u32::from(*letter) % 32);
                        }
                        _ => out.push_str(r"\\c"),
                    },
                    'x' | 'u' => {
                        let width = if e == 'x' { 2 } else { 4 };
                        match hex_at(&cs, i, width) {
                            // JS matches UTF-16 units; Rust strings have no lone surrogates.
                            Some(0xD800..0xE000) => {
                                return Err("surrogate escapes are not supported".into());
                            }
                            Some(unit) => {
                                i += width;
                                push_code(&mut out, unit);
                            }
                            None => out.push(e),
                        }
                    }
                    // Any other escape is an identity escape in JS's non-Unicode mode.
                    other => push_literal(&mut out, other),
                }
            }
            '[' if in_class => out.push_str(r"\["),
            '[' => {
                let negated = cs.get(i) == Some(&'^');
                let body = i + usize::from(negated);
                if cs.get(body) == Some(&']') {
                    // JS `[]` matches nothing and `[^]` matches anything.
                    out.push_str(if negated {
                        r"[\x00-\x{10FFFF}]"
                    } else {
                        r"[^\x00-\x{10FFFF}]"
                    });
                    i = body + 1;
                } else {
                    out.push_str(if negated { "[^" } else { "[" });
                    i = body;
                    in_class = true;
                }
            }
            ']' if in_class => {
                out.push(']');
                in_class = false;
            }
            // Rust gives these class-set meanings (`&&`, `~~`, `--`); JS does not.
            '&' | '~' if in_class => push_literal(&mut out, c),
            '-' if in_class && cs.get(i) == Some(&'-') => {
                out.push_str(r"-\-");
                i += 1;
            }
            _ if in_class => out.push(c),
            '.' => out.push_str(r"[^\n\r\x{2028}\x{2029}]"),
            '{' => match quantifier_len(&cs[i..]) {
                Some(len) => {
                    out.push('{');
                    out.extend(&cs[i..i + len]);
                    i += len;
                }
                // JS (Annex B) reads a brace that starts no quantifier literally.
                None => out.push_str(r"\{"),
            },
            '}' | ']' => push_literal(&mut out, c),
            '(' if cs.get(i) == Some(&'?')
                && !matches!(cs.get(i + 1), Some(':' | '=' | '!' | '<')) =>
            {
                return Err("inline flags and `(?P<…>` groups are not ECMAScript syntax".into());
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Length of `n}`, `n,}` or `n,m}` at the start of `rest`, if it is one.
fn quantifier_len(rest: &[char]) -> Option<usize> {
    let digits = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let min = digits(0);
    if min == 0 {
        return None;
    }
    let mut i = min;
    if rest.get(i) == Some(&',') {
        i += 1;
        i += digits(i);
    }
    (rest.get(i) == Some(&'}')).then_some(i + 1)
}

fn hex_at(cs: &[char], at: usize, width: usize) -> Option<u32> {
    let digits = cs.get(at..at + width)?;
    digits
        .iter()
        .try_fold(0, |acc, c| c.to_digit(16).map(|d| acc * 16 + d))
}

fn push_code(out: &mut String, code: u32) {
    let _ = write!(out, r"\x{{{code:X}}}");
}

fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_punctuation() {
        out.push('\\');
        out.push(c);
    } else if c.is_ascii_control() {
        push_code(out, u32::from(c));
    } else {
        out.push(c);
    }
}
