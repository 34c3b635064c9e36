//! Structural fingerprint of a message: the length of every sequence, byte
//! string and map inside it, in serialization order.
//!
//! The DKLs23 library indexes into vectors of received messages assuming the
//! lengths an honest peer produces; a crafted message with a shorter vector
//! would panic (trap the wasm module) instead of returning an error. Every
//! received message is therefore compared with the shape of a message of the
//! same type that this party produced itself in the same session; any
//! difference is rejected before the library sees it.

use serde::ser::{self, Serialize};
use std::fmt;

#[derive(Debug)]
pub struct ShapeError;
impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shape error")
    }
}
impl std::error::Error for ShapeError {}
impl ser::Error for ShapeError {
    fn custom<T: fmt::Display>(_: T) -> Self {
        ShapeError
    }
}

/// Returns the lengths of all variable-length parts of `value`, or `None` if
/// it cannot be walked (it always can for the library's message types).
pub fn shape_of<T: Serialize + ?Sized>(value: &T) -> Option<Vec<u32>> {
    let mut s = Shape { lens: Vec::new() };
    value.serialize(&mut s).ok()?;
    Some(s.lens)
}

struct Shape {
    lens: Vec<u32>,
}

impl Shape {
    fn push(&mut self, len: Option<usize>) -> Result<(), ShapeError> {
        let n = len.ok_or(ShapeError)?;
        self.lens.push(u32::try_from(n).map_err(|_| ShapeError)?);
        Ok(())
    }
}

/// The start of a tuple or struct variant: records the variant index.
macro_rules! variant_start {
    ($name:ident) => {
        fn $name(
            self,
            _: &'static str,
            i: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self, ShapeError> {
            self.lens.push(i);
            Ok(self)
        }
    };
}

macro_rules! leaf {
    ($($name:ident: $t:ty),*) => {
        $(fn $name(self, _v: $t) -> Result<(), ShapeError> { Ok(()) })*
    };
}

impl<'a> ser::Serializer for &'a mut Shape {
    type Ok = ();
    type Error = ShapeError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    leaf!(serialize_bool: bool, serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
          serialize_i64: i64, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
          serialize_u64: u64, serialize_f32: f32, serialize_f64: f64, serialize_char: char);

    // The wire format (postcard) is binary; as a human-readable serializer
    // this walk made k256 format every scalar and point as a hex string
    // (~16 % of native signing time). Both shapes compared come from this
    // serializer, so the setting only has to be the same for both.
    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_str(self, v: &str) -> Result<(), ShapeError> {
        self.push(Some(v.len()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), ShapeError> {
        self.push(Some(v.len()))
    }
    fn serialize_none(self) -> Result<(), ShapeError> {
        self.lens.push(u32::MAX);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), ShapeError> {
        self.lens.push(u32::MAX - 1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), ShapeError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), ShapeError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        i: u32,
        _: &'static str,
    ) -> Result<(), ShapeError> {
        self.lens.push(i);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        v: &T,
    ) -> Result<(), ShapeError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        i: u32,
        _: &'static str,
        v: &T,
    ) -> Result<(), ShapeError> {
        self.lens.push(i);
        v.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, ShapeError> {
        self.push(len)?;
        Ok(self)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self, ShapeError> {
        Ok(self)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self, ShapeError> {
        Ok(self)
    }
    variant_start!(serialize_tuple_variant);
    fn serialize_map(self, len: Option<usize>) -> Result<Self, ShapeError> {
        self.push(len)?;
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self, ShapeError> {
        Ok(self)
    }
    variant_start!(serialize_struct_variant);
}

macro_rules! compound {
    ($tr:ident, $method:ident $(, $key:ty)?) => {
        impl<'a> ser::$tr for &'a mut Shape {
            type Ok = ();
            type Error = ShapeError;
            fn $method<T: Serialize + ?Sized>(&mut self, $(_: $key,)? v: &T) -> Result<(), ShapeError> {
                v.serialize(&mut **self)
            }
            fn end(self) -> Result<(), ShapeError> {
                Ok(())
            }
        }
    };
}
compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, serialize_field, &'static str);
compound!(SerializeStructVariant, serialize_field, &'static str);

impl<'a> ser::SerializeMap for &'a mut Shape {
    type Ok = ();
    type Error = ShapeError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), ShapeError> {
        k.serialize(&mut **self)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ShapeError> {
        v.serialize(&mut **self)
    }
    fn end(self) -> Result<(), ShapeError> {
        Ok(())
    }
}
