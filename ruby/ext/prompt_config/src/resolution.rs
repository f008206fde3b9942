//! `PromptConfig::Native::Resolution`: the core's `Resolution`, kept in Rust, whose fields
//! become Ruby values only when read.
//!
//! Why: building the whole deep-frozen Hash (13 keys, the model and fallback Hashes, every
//! message Hash and String) was more than half of a native resolve, and most callers read only
//! a few fields (`version`, `messages`, `model`). Each field is converted on first read with
//! the same serializer and shapes as before (deep-frozen, Symbol keys), then kept: later reads
//! return the same object, and `to_h` reuses the fields already built.
//!
//! GC safety: the built values are referenced only from this object, so `mark` marks them
//! (`rb_gc_mark` pins them, so compaction cannot move them under the stored VALUEs). A value
//! under construction lives on this thread's stack, which Ruby scans. Ruby methods run with the
//! GVL held, so the cells are never touched by two threads at once.

use std::cell::Cell;
use std::sync::OnceLock;

use magnus::{
    DataTypeFunctions, Error, Ruby, TypedData, Value,
    gc::Marker,
    prelude::*,
    rb_sys::{AsRawValue, FromRawValue},
};
use prompt_config_core::Resolution;
use serde::Serialize;

use crate::serialize::Keys;

/// The fields of `Resolution` in declaration order: the Hash keys of `to_h`, as the core
/// serializes them (checked by `fields_match_the_core_serialization` in the tests). `output`
/// and `tools` are left out of the core's JSON when the version has none, and so out of `to_h`.
pub const FIELDS: [&str; 16] = [
    "feature",
    "version",
    "source",
    "experiment",
    "variant",
    "rule",
    "bucket",
    "model",
    "fallbacks",
    "messages",
    "output",
    "tools",
    "tool_choice",
    "prompt_hash",
    "config_revision",
    "request_id",
];

/// The indexes in `FIELDS` of the fields the core leaves out when empty.
const OUTPUT: usize = 10;
const TOOLS: usize = 11;

/// Slot of the whole Hash, after the fields.
const HASH_SLOT: usize = FIELDS.len();

/// The static Symbols of `FIELDS` as raw VALUEs, made once at load (`define`). A static Symbol
/// is an interned ID Ruby never collects or moves, so its VALUE may be kept; and any Symbol of
/// the same name is this one, so `[]` finds a field by comparing VALUEs (no name lookup) and
/// `to_h` reuses them as keys (no interning per call).
static FIELD_KEYS: OnceLock<[rb_sys::VALUE; FIELDS.len()]> = OnceLock::new();

/// A resolution whose Ruby values are built on first read.
#[derive(TypedData)]
#[magnus(
    class = "PromptConfig::Native::Resolution",
    free_immediately,
    size,
    mark
)]
pub struct NativeResolution {
    resolution: Resolution,
    /// The Ruby value of each field once built, then the whole Hash. Raw VALUEs: a magnus
    /// `Value` is not `Send`, and these are only read under the GVL and marked below.
    built: [Cell<Option<rb_sys::VALUE>>; FIELDS.len() + 1],
}

impl DataTypeFunctions for NativeResolution {
    fn mark(&self, marker: &Marker) {
        for cell in &self.built {
            if let Some(raw) = cell.get() {
                // SAFETY: a VALUE this object stored and keeps alive by marking it here.
                marker.mark(unsafe { Value::from_raw(raw) });
            }
        }
    }
}

impl NativeResolution {
    /// Wraps a core resolution; nothing is converted yet.
    pub fn new(resolution: Resolution) -> Self {
        NativeResolution {
            resolution,
            built: Default::default(),
        }
    }

    /// The Ruby value of field `index` of `FIELDS`, built on first read.
    fn field(&self, ruby: &Ruby, index: usize) -> Result<Value, Error> {
        if let Some(raw) = self.built[index].get() {
            // SAFETY: a VALUE stored by this object and marked by it since.
            return Ok(unsafe { Value::from_raw(raw) });
        }
        let resolution = &self.resolution;
        let value = match index {
            0 => convert(ruby, &resolution.feature),
            1 => convert(ruby, &resolution.version),
            2 => convert(ruby, &resolution.source),
            3 => convert(ruby, &resolution.experiment),
            4 => convert(ruby, &resolution.variant),
            5 => convert(ruby, &resolution.rule),
            6 => convert(ruby, &resolution.bucket),
            7 => convert(ruby, &resolution.model),
            8 => convert(ruby, &resolution.fallbacks),
            9 => convert(ruby, &resolution.messages),
            OUTPUT => convert(ruby, &resolution.output),
            TOOLS => convert(ruby, &resolution.tools),
            12 => convert(ruby, &resolution.tool_choice),
            13 => convert(ruby, &resolution.prompt_hash),
            14 => convert(ruby, &resolution.config_revision),
            _ => convert(ruby, &resolution.request_id),
        }?;
        self.built[index].set(Some(value.as_raw()));
        Ok(value)
    }

    /// Whether the core's JSON leaves field `index` out (`output` without a schema, `tools`
    /// without tools), so `to_h` does too.
    fn skipped(&self, index: usize) -> bool {
        match index {
            OUTPUT => self.resolution.output.is_none(),
            TOOLS => self.resolution.tools.is_empty(),
            _ => false,
        }
    }

    /// `#[](key)`: the field named by Symbol `key` (deep-frozen, Symbol keys), or nil for
    /// anything else, as a Hash answers.
    fn fetch(ruby: &Ruby, rb_self: &Self, key: Value) -> Result<Value, Error> {
        crate::guard(ruby, || {
            let raw = key.as_raw();
            match field_keys().iter().position(|field| *field == raw) {
                Some(index) => rb_self.field(ruby, index),
                None => Ok(ruby.qnil().as_value()),
            }
        })
    }

    /// `#to_h`: every field as a deep-frozen Hash with Symbol keys, the shape the eager
    /// conversion gave (built once, sharing the fields already read).
    fn to_h(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        crate::guard(ruby, || {
            if let Some(raw) = rb_self.built[HASH_SLOT].get() {
                // SAFETY: as in `field`.
                return Ok(unsafe { Value::from_raw(raw) });
            }
            let keys = field_keys();
            let none_built = rb_self.built[..FIELDS.len()]
                .iter()
                .all(|cell| cell.get().is_none());
            let hash = if none_built {
                // Nothing read yet: one serializer pass over the whole resolution (as the eager
                // conversion did), then each field is taken from the Hash, so later reads share
                // it. `rb_hash_aref` with a Symbol key runs no Ruby code.
                let hash = convert(ruby, &rb_self.resolution)?;
                for (index, (cell, key)) in rb_self.built.iter().zip(keys).enumerate() {
                    // A field the JSON leaves out is built on its own when read.
                    if rb_self.skipped(index) {
                        continue;
                    }
                    // SAFETY: `hash` is a live Hash on this stack.
                    cell.set(Some(unsafe { rb_sys::rb_hash_aref(hash.as_raw(), *key) }));
                }
                hash
            } else {
                let hash = ruby.hash_new();
                for (index, key) in keys.iter().enumerate() {
                    if rb_self.skipped(index) {
                        continue;
                    }
                    let value = rb_self.field(ruby, index)?;
                    // SAFETY: `hash` is new and unfrozen, the key a static Symbol: this cannot
                    // raise (magnus' `aset` would pay for an `rb_protect` per key).
                    unsafe { rb_sys::rb_hash_aset(hash.as_raw(), *key, value.as_raw()) };
                }
                hash.freeze();
                hash.as_value()
            };
            rb_self.built[HASH_SLOT].set(Some(hash.as_raw()));
            Ok(hash)
        })
    }
}

/// The static Symbols of `FIELDS` (set by `define`, which runs before any resolution exists).
fn field_keys() -> &'static [rb_sys::VALUE; FIELDS.len()] {
    FIELD_KEYS.get_or_init(|| [rb_sys::Qundef as rb_sys::VALUE; FIELDS.len()])
}

/// A core value as a deep-frozen Ruby value with Symbol keys.
fn convert<T: Serialize>(ruby: &Ruby, value: &T) -> Result<Value, Error> {
    crate::serialized(ruby, value, Keys::Symbols, true)
}

/// Defines `PromptConfig::Native::Resolution` (no `new`: only `Engine#resolve` makes one).
pub fn define(ruby: &Ruby, native: magnus::RModule) -> Result<(), Error> {
    FIELD_KEYS.get_or_init(|| {
        FIELDS.map(|name| crate::text::static_symbol(ruby, name).as_value().as_raw())
    });
    let class = native.define_class("Resolution", ruby.class_object())?;
    class.undef_default_alloc_func();
    class.define_method("[]", magnus::method!(NativeResolution::fetch, 1))?;
    class.define_method("to_h", magnus::method!(NativeResolution::to_h, 0))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use prompt_config_core::{Context, Engine, EngineOptions};
    use serde_json::json;

    use super::FIELDS;

    /// `FIELDS` lists every field the core serializes, in its order: a field added to the
    /// core's `Resolution` must be added here too, or `to_h` and `[]` would miss it.
    #[test]
    fn fields_match_the_core_serialization() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..");
        let options = json!({
            "config_dir": root.join("config"),
            "prompts_dir": root.join("prompts"),
            "mock": true,
        });
        let engine =
            Engine::open(EngineOptions::from_json(&options.to_string()).expect("options parse"))
                .expect("the shipped config opens");
        let variables = json!({
            "current_role": "Registered Nurse", "degree": "BSc Nursing",
            "skills": ["patient care"], "sector": "healthcare", "goals": "Move into data",
        });
        let context = Context::new("1".to_string())
            .with_variables(variables.as_object().cloned().unwrap_or_default());
        let resolution = engine
            .resolve("career_path_navigator", &context)
            .expect("the shipped feature resolves");
        let serialized = serde_json::to_value(&resolution).expect("a resolution serializes");
        let keys: Vec<&str> = serialized
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        // Every serialized key is a field, in the same order; only `output` and `tools` may be
        // absent (a version without a schema or tools).
        let present: Vec<&str> = FIELDS
            .iter()
            .copied()
            .filter(|field| keys.contains(field))
            .collect();
        assert_eq!(keys, present);
        let absent: Vec<&str> = FIELDS
            .iter()
            .copied()
            .filter(|field| !keys.contains(field))
            .collect();
        assert!(
            absent
                .iter()
                .all(|field| ["output", "tools"].contains(field)),
            "{absent:?}"
        );
    }
}
