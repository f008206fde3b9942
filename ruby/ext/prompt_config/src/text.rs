//! Rust text as Ruby Strings and Symbols, safe for every input: empty, with NUL bytes, non-BMP
//! characters, any length.
//!
//! Why this exists: a Rust `&str` or slice of length 0 has a dangling pointer (`0x1`), and Ruby
//! 3.1's C API reads through the pointer even for length 0 in some functions: an empty answer
//! from a provider made `rb_enc_interned_str` segfault at `0x0000000000000001` (issue 9). Every
//! pointer this extension hands to a Ruby function comes from [`c_text`], which gives empty
//! input the address of a static NUL byte instead.
//!
//! Symbols: [`static_symbol`] interns an ID, which Ruby never collects, so its VALUE may be kept
//! across calls (the serializer caches field names); [`dynamic_symbol`] makes a Symbol the GC
//! may collect once unreferenced, for keys that come from data (so data cannot grow Ruby's
//! symbol table forever). A dynamic Symbol must never be cached outside Ruby's reach.

use std::os::raw::{c_char, c_long};

use magnus::{
    Error, Ruby, StaticSymbol, Value,
    rb_sys::{AsRawValue, FromRawId, FromRawValue, protect},
    value::Id,
};

/// A readable address for empty text.
static EMPTY: [u8; 1] = [0];

/// `bytes` as the pointer and length Ruby's C API takes: never a dangling pointer.
pub fn c_text(bytes: &[u8]) -> (*const c_char, c_long) {
    if bytes.is_empty() {
        (EMPTY.as_ptr().cast(), 0)
    } else {
        // A Rust allocation is at most isize::MAX bytes, so the length fits a c_long on every
        // platform Ruby runs on (LP64; on LLP64 Windows, Ruby's own API has the same limit).
        (bytes.as_ptr().cast(), bytes.len() as c_long)
    }
}

/// A new, unfrozen UTF-8 String holding `text`.
pub fn string(_ruby: &Ruby, text: &str) -> Value {
    let (pointer, len) = c_text(text.as_bytes());
    // SAFETY: `pointer` is readable for `len` bytes of valid UTF-8 (see `c_text`), and Ruby
    // copies them; the GVL is held (a `&Ruby` exists only on a Ruby thread).
    unsafe { Value::from_raw(rb_sys::rb_utf8_str_new(pointer, len)) }
}

/// A frozen, deduplicated UTF-8 String (Ruby's fstring table, as `-"text"`).
pub fn interned_string(_ruby: &Ruby, text: &str) -> Value {
    let (pointer, len) = c_text(text.as_bytes());
    // SAFETY: as in `string`; Ruby copies the bytes when the fstring is new.
    unsafe {
        Value::from_raw(rb_sys::rb_enc_interned_str(
            pointer,
            len,
            rb_sys::rb_utf8_encoding(),
        ))
    }
}

/// A new, unfrozen binary (ASCII-8BIT) String holding `bytes`.
pub fn binary_string(_ruby: &Ruby, bytes: &[u8]) -> Value {
    let (pointer, len) = c_text(bytes);
    // SAFETY: `pointer` is readable for `len` bytes; Ruby copies them.
    unsafe { Value::from_raw(rb_sys::rb_str_new(pointer, len)) }
}

/// The static Symbol of `name` (an interned ID: never collected, safe to cache).
pub fn static_symbol(_ruby: &Ruby, name: &str) -> StaticSymbol {
    let (pointer, len) = c_text(name.as_bytes());
    // SAFETY: as in `string`; `rb_intern3` returns a valid, non-zero ID for valid UTF-8.
    let id = unsafe { Id::from_raw(rb_sys::rb_intern3(pointer, len, rb_sys::rb_utf8_encoding())) };
    StaticSymbol::from(id)
}

/// The Symbol for `name`, for keys that come from data: the existing Symbol when there is one
/// (no allocation: parameter names and the like exist already), else a new dynamic Symbol the
/// GC may collect (`String#to_sym`). Never cache its VALUE outside Ruby objects.
pub fn dynamic_symbol(ruby: &Ruby, name: &str) -> Result<Value, Error> {
    let (pointer, len) = c_text(name.as_bytes());
    // SAFETY: as in `string`; `rb_check_symbol_cstr` only looks the name up (Qnil if absent).
    let existing =
        unsafe { rb_sys::rb_check_symbol_cstr(pointer, len, rb_sys::rb_utf8_encoding()) };
    if existing != rb_sys::Qnil as rb_sys::VALUE {
        // SAFETY: a Symbol VALUE Ruby just returned.
        return Ok(unsafe { Value::from_raw(existing) });
    }
    let text = string(ruby, name);
    // SAFETY: `text` is a live String on this stack; `rb_str_intern` is called under
    // `rb_protect`, so an exception (none is expected for valid UTF-8) comes back as `Err`.
    let raw = protect(|| unsafe { rb_sys::rb_str_intern(text.as_raw()) })?;
    // SAFETY: a VALUE Ruby just returned.
    Ok(unsafe { Value::from_raw(raw) })
}
