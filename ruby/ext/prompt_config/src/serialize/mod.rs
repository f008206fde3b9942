//! A serde `Serializer` that builds Ruby values directly from the core's `Serialize` types
//! (resolutions, completions, metrics, error details), with no JSON text or `serde_json::Value`
//! in between. The shape is serde_json's: structs and maps become Hashes, sequences Arrays,
//! unit enum variants Strings, `None` nil.
//!
//! Every String and Symbol is made by `crate::text`, which never hands Ruby a dangling pointer
//! (empty text included). Hash keys are Symbols or Strings as asked. Struct field names are
//! static Symbols (interned IDs, never collected), cached per thread as `StaticSymbol`s: only a
//! static Symbol may be kept across calls; keys from data are dynamic Symbols and never cached
//! (`keys.rs`). Everything can be deep-frozen. Values under construction live on this thread's
//! stack, which Ruby's GC scans. The raw `rb_hash_aset` / `rb_ary_push` calls are on new,
//! unfrozen containers, so they cannot raise.

mod keys;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use magnus::{IntoValue, Ruby, StaticSymbol, Value, prelude::*, rb_sys::AsRawValue};
use serde::ser::{self, Serialize};

use crate::text;
use keys::KeySerializer;

/// How map and struct keys become Ruby Hash keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// `:name`: for records with fixed field names (resolutions, completions, error details).
    Symbols,
    /// `"name"`: for data whose keys are labels (metrics).
    Strings,
}

/// Converts `value` to a Ruby value.
pub fn to_ruby<T: Serialize + ?Sized>(
    ruby: &Ruby,
    value: &T,
    keys: Keys,
    freeze: bool,
) -> Result<Value, SerializeError> {
    value.serialize(RubySerializer { ruby, keys, freeze })
}

/// A value the serializer cannot represent (never expected from the core's types).
#[derive(Debug)]
pub struct SerializeError(pub(crate) String);

impl fmt::Display for SerializeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for SerializeError {}

impl ser::Error for SerializeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        SerializeError(message.to_string())
    }
}

/// Field names are `&'static str`: their address and length identify them, so a multiplicative
/// hash of those two words is enough (SipHash showed up at 8% of a resolve).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Field names by address and length. Only `StaticSymbol`s go in: their VALUE stays valid for
/// the life of the VM, where a dynamic Symbol's could be collected while still cached here.
type SymbolCache = HashMap<(usize, usize), StaticSymbol, BuildHasherDefault<AddressHasher>>;

thread_local! {
    static FIELD_SYMBOLS: RefCell<SymbolCache> = RefCell::new(SymbolCache::default());
}

#[derive(Clone, Copy)]
struct RubySerializer<'r> {
    ruby: &'r Ruby,
    keys: Keys,
    freeze: bool,
}

/// Frozen strings up to this length are interned (Ruby's fstring table): names, versions,
/// models and sources repeat on every call, so they cost a table lookup instead of a new object.
const INTERN_MAX: usize = 28;

impl RubySerializer<'_> {
    fn string(self, text: &str) -> Value {
        if self.freeze && text.len() <= INTERN_MAX {
            return text::interned_string(self.ruby, text);
        }
        let string = text::string(self.ruby, text);
        if self.freeze {
            string.freeze();
        }
        string
    }

    /// A key for a struct field: a cached static Symbol, or a frozen String.
    fn field_key(self, name: &'static str) -> Value {
        match self.keys {
            Keys::Strings => self.string(name),
            Keys::Symbols => {
                let slot = (name.as_ptr() as usize, name.len());
                let cached = FIELD_SYMBOLS.with(|cache| cache.borrow().get(&slot).copied());
                let symbol = cached.unwrap_or_else(|| {
                    let symbol = text::static_symbol(self.ruby, name);
                    FIELD_SYMBOLS.with(|cache| cache.borrow_mut().insert(slot, symbol));
                    symbol
                });
                symbol.as_value()
            }
        }
    }

    fn new_hash(self) -> Value {
        self.ruby.hash_new().as_value()
    }

    fn new_array(self, len: usize) -> Value {
        self.ruby.ary_new_capa(len).as_value()
    }

    fn finish(self, value: Value) -> Value {
        if self.freeze {
            value.freeze();
        }
        value
    }

    /// `{variant => value}`, serde_json's shape for data-carrying enum variants.
    fn tagged(self, variant: &'static str, value: Value) -> Value {
        let hash = self.new_hash();
        hash_set(hash, self.field_key(variant), value);
        self.finish(hash)
    }
}

fn hash_set(hash: Value, key: Value, value: Value) {
    // SAFETY: `hash` is a new, unfrozen Hash and the key a String or Symbol: this cannot raise.
    unsafe {
        rb_sys::rb_hash_aset(hash.as_raw(), key.as_raw(), value.as_raw());
    }
}

fn array_push(array: Value, value: Value) {
    // SAFETY: `array` is a new, unfrozen Array: this cannot raise.
    unsafe {
        rb_sys::rb_ary_push(array.as_raw(), value.as_raw());
    }
}

impl<'r> ser::Serializer for RubySerializer<'r> {
    type Ok = Value;
    type Error = SerializeError;
    type SerializeSeq = Sequence<'r>;
    type SerializeTuple = Sequence<'r>;
    type SerializeTupleStruct = Sequence<'r>;
    type SerializeTupleVariant = TaggedSequence<'r>;
    type SerializeMap = Mapping<'r>;
    type SerializeStruct = Mapping<'r>;
    type SerializeStructVariant = TaggedMapping<'r>;

    fn serialize_bool(self, value: bool) -> Result<Value, SerializeError> {
        Ok(value.into_value_with(self.ruby))
    }

    fn serialize_i8(self, value: i8) -> Result<Value, SerializeError> {
        self.serialize_i64(i64::from(value))
    }

    fn serialize_i16(self, value: i16) -> Result<Value, SerializeError> {
        self.serialize_i64(i64::from(value))
    }

    fn serialize_i32(self, value: i32) -> Result<Value, SerializeError> {
        self.serialize_i64(i64::from(value))
    }

    fn serialize_i64(self, value: i64) -> Result<Value, SerializeError> {
        Ok(value.into_value_with(self.ruby))
    }

    fn serialize_u8(self, value: u8) -> Result<Value, SerializeError> {
        self.serialize_u64(u64::from(value))
    }

    fn serialize_u16(self, value: u16) -> Result<Value, SerializeError> {
        self.serialize_u64(u64::from(value))
    }

    fn serialize_u32(self, value: u32) -> Result<Value, SerializeError> {
        self.serialize_u64(u64::from(value))
    }

    fn serialize_u64(self, value: u64) -> Result<Value, SerializeError> {
        Ok(value.into_value_with(self.ruby))
    }

    fn serialize_f32(self, value: f32) -> Result<Value, SerializeError> {
        self.serialize_f64(f64::from(value))
    }

    fn serialize_f64(self, value: f64) -> Result<Value, SerializeError> {
        Ok(value.into_value_with(self.ruby))
    }

    fn serialize_char(self, value: char) -> Result<Value, SerializeError> {
        Ok(self.string(value.encode_utf8(&mut [0; 4])))
    }

    fn serialize_str(self, value: &str) -> Result<Value, SerializeError> {
        Ok(self.string(value))
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<Value, SerializeError> {
        Ok(self.finish(text::binary_string(self.ruby, value)))
    }

    fn serialize_none(self) -> Result<Value, SerializeError> {
        Ok(self.ruby.qnil().as_value())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, SerializeError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value, SerializeError> {
        Ok(self.ruby.qnil().as_value())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, SerializeError> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, SerializeError> {
        Ok(self.string(variant))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<Value, SerializeError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value, SerializeError> {
        let inner = value.serialize(self)?;
        Ok(self.tagged(variant, inner))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Sequence<'r>, SerializeError> {
        Ok(Sequence {
            serializer: self,
            array: self.new_array(len.unwrap_or(0)),
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Sequence<'r>, SerializeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Sequence<'r>, SerializeError> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TaggedSequence<'r>, SerializeError> {
        Ok(TaggedSequence {
            variant,
            sequence: self.serialize_seq(Some(len))?,
        })
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Mapping<'r>, SerializeError> {
        Ok(Mapping {
            serializer: self,
            hash: self.new_hash(),
            key: None,
        })
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Mapping<'r>, SerializeError> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<TaggedMapping<'r>, SerializeError> {
        Ok(TaggedMapping {
            variant,
            mapping: self.serialize_map(Some(len))?,
        })
    }
}

/// An Array being filled.
pub struct Sequence<'r> {
    serializer: RubySerializer<'r>,
    array: Value,
}

impl ser::SerializeSeq for Sequence<'_> {
    type Ok = Value;
    type Error = SerializeError;

    fn serialize_element<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), SerializeError> {
        let item = value.serialize(self.serializer)?;
        array_push(self.array, item);
        Ok(())
    }

    fn end(self) -> Result<Value, SerializeError> {
        Ok(self.serializer.finish(self.array))
    }
}

impl ser::SerializeTuple for Sequence<'_> {
    type Ok = Value;
    type Error = SerializeError;

    fn serialize_element<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), SerializeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, SerializeError> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Sequence<'_> {
    type Ok = Value;
    type Error = SerializeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerializeError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value, SerializeError> {
        ser::SerializeSeq::end(self)
    }
}

/// `{variant => [...]}`.
pub struct TaggedSequence<'r> {
    variant: &'static str,
    sequence: Sequence<'r>,
}

impl ser::SerializeTupleVariant for TaggedSequence<'_> {
    type Ok = Value;
    type Error = SerializeError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerializeError> {
        ser::SerializeSeq::serialize_element(&mut self.sequence, value)
    }

    fn end(self) -> Result<Value, SerializeError> {
        let serializer = self.sequence.serializer;
        let array = ser::SerializeSeq::end(self.sequence)?;
        Ok(serializer.tagged(self.variant, array))
    }
}

/// A Hash being filled.
pub struct Mapping<'r> {
    serializer: RubySerializer<'r>,
    hash: Value,
    key: Option<Value>,
}

impl ser::SerializeMap for Mapping<'_> {
    type Ok = Value;
    type Error = SerializeError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerializeError> {
        let key = key.serialize(KeySerializer {
            serializer: self.serializer,
        })?;
        self.key = Some(key);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerializeError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| SerializeError("a map value came without its key".into()))?;
        let value = value.serialize(self.serializer)?;
        hash_set(self.hash, key, value);
        Ok(())
    }

    fn end(self) -> Result<Value, SerializeError> {
        Ok(self.serializer.finish(self.hash))
    }
}

impl ser::SerializeStruct for Mapping<'_> {
    type Ok = Value;
    type Error = SerializeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), SerializeError> {
        let key = self.serializer.field_key(name);
        let value = value.serialize(self.serializer)?;
        hash_set(self.hash, key, value);
        Ok(())
    }

    fn end(self) -> Result<Value, SerializeError> {
        Ok(self.serializer.finish(self.hash))
    }
}

/// `{variant => {...}}`.
pub struct TaggedMapping<'r> {
    variant: &'static str,
    mapping: Mapping<'r>,
}

impl ser::SerializeStructVariant for TaggedMapping<'_> {
    type Ok = Value;
    type Error = SerializeError;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), SerializeError> {
        ser::SerializeStruct::serialize_field(&mut self.mapping, name, value)
    }

    fn end(self) -> Result<Value, SerializeError> {
        let serializer = self.mapping.serializer;
        let hash = ser::SerializeStruct::end(self.mapping)?;
        Ok(serializer.tagged(self.variant, hash))
    }
}
