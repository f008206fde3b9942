//! Map keys: Symbols or Strings of their text (numbers and booleans too, as serde_json does).
//!
//! Map keys come from data (error details, metric labels, variables), not from the code, so a
//! Symbol key is a dynamic Symbol: the GC collects it with the Hash, and data cannot grow Ruby's
//! symbol table forever. It is never cached (a cached dynamic Symbol could be collected while
//! its VALUE is still in use).

use magnus::Value;
use serde::ser::{self, Serialize};

use super::{Keys, RubySerializer, SerializeError};
use crate::text::dynamic_symbol;

pub(super) struct KeySerializer<'r> {
    pub(super) serializer: RubySerializer<'r>,
}

impl KeySerializer<'_> {
    fn text(&self, text: &str) -> Result<Value, SerializeError> {
        match self.serializer.keys {
            Keys::Symbols => dynamic_symbol(self.serializer.ruby, text)
                .map_err(|error| SerializeError(format!("a Hash key: {error}"))),
            Keys::Strings => Ok(self.serializer.string(text)),
        }
    }
}

fn key_error() -> SerializeError {
    SerializeError("map keys must be strings, numbers or booleans".into())
}

impl ser::Serializer for KeySerializer<'_> {
    type Ok = Value;
    type Error = SerializeError;
    type SerializeSeq = ser::Impossible<Value, SerializeError>;
    type SerializeTuple = ser::Impossible<Value, SerializeError>;
    type SerializeTupleStruct = ser::Impossible<Value, SerializeError>;
    type SerializeTupleVariant = ser::Impossible<Value, SerializeError>;
    type SerializeMap = ser::Impossible<Value, SerializeError>;
    type SerializeStruct = ser::Impossible<Value, SerializeError>;
    type SerializeStructVariant = ser::Impossible<Value, SerializeError>;

    fn serialize_bool(self, value: bool) -> Result<Value, SerializeError> {
        self.text(if value { "true" } else { "false" })
    }
    fn serialize_i8(self, value: i8) -> Result<Value, SerializeError> {
        self.text(&value.to_string())
    }
    fn serialize_i16(self, value: i16) -> Result<Value, SerializeError> {
        self.text(&value.to_string())
    }
    fn serialize_i32(self, value: i32) -> Result<Value, SerializeError> {
        self.text(&value.to_string())
    }
    fn serialize_i64(self, value: i64) -> Result<Value, SerializeError> {
        self.text(&value.to_string())
    }
    fn serialize_u8(self, value: u8) -> Result<Value, SerializeError> {
        self.text(&value.to_string())
    }
    fn serialize_u16(self, value: u16) -> Result<Value, SerializeError> {
        self.text(&value.to_string())
    }
    fn serialize_u32(self, value: u32) -> Result<Value, SerializeError> {
        self.text(&value.to_string())
    }
    fn serialize_u64(self, value: u64) -> Result<Value, SerializeError> {
        self.text(&value.to_string())
    }
    fn serialize_f32(self, _value: f32) -> Result<Value, SerializeError> {
        Err(key_error())
    }
    fn serialize_f64(self, _value: f64) -> Result<Value, SerializeError> {
        Err(key_error())
    }
    fn serialize_char(self, value: char) -> Result<Value, SerializeError> {
        self.text(value.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, value: &str) -> Result<Value, SerializeError> {
        self.text(value)
    }
    fn serialize_bytes(self, _value: &[u8]) -> Result<Value, SerializeError> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<Value, SerializeError> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value, SerializeError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, SerializeError> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, SerializeError> {
        Err(key_error())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, SerializeError> {
        self.text(variant)
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
        _variant: &'static str,
        _value: &T,
    ) -> Result<Value, SerializeError> {
        Err(key_error())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, SerializeError> {
        Err(key_error())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, SerializeError> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, SerializeError> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, SerializeError> {
        Err(key_error())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, SerializeError> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, SerializeError> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, SerializeError> {
        Err(key_error())
    }
}
