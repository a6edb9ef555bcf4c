//! The dynamic value model every codec and the wasm bridge share.
//!
//! A [`Value`] is what RPyC's brine can carry by value: Python's immutable
//! builtins and tuples of them. Rust code converts to and from it with
//! [`IntoValue`] and [`FromValue`]; the wasm bridge converts it to and from
//! `wasmtime::component::Val` by the export's own signature.

pub mod local;

use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::held::PeerObject;
pub use crate::object_ref::{Holder, ObjectId, ObjectRef};
use local::Local;

/// How deeply values may nest (a tuple in a tuple in ...). Decoding and
/// conversion recurse once per level; the bound keeps hostile input far from
/// the end of the stack. Python itself stops at about 1,000 frames.
pub const MAX_DEPTH: usize = 100;

/// A value that crosses a connection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Value {
    /// Python `None`; also the result of a function that returns nothing.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An integer; wide enough for every WIT integer type.
    Int(i128),
    /// An integer outside `i128`, as decimal text.
    BigInt(String),
    /// A double.
    Float(f64),
    /// A complex number: (real, imaginary).
    Complex(f64, f64),
    /// A string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A tuple (WIT lists, tuples and records travel as tuples).
    Tuple(#[serde(deserialize_with = "nested")] Vec<Value>),
    /// A frozenset (WIT flags travel as a frozenset of names).
    FrozenSet(#[serde(deserialize_with = "nested")] Vec<Value>),
    /// A slice: (start, stop, step).
    Slice(#[serde(deserialize_with = "nested")] Box<[Value; 3]>),
    /// Python's `NotImplemented`.
    NotImplemented,
    /// Python's `Ellipsis` (`...`).
    Ellipsis,
    /// An object passed by reference (a method, a callback, a list).
    Object(ObjectRef),
    /// One of this side's objects, lent to the peer when the value is sent
    /// (it travels as an [`Value::Object`]). Never encoded itself.
    #[serde(skip)]
    Local(Local),
    /// An object the peer lent, held by this side until every handle to it
    /// is dropped; it goes back to the peer as the peer's own. Never encoded
    /// itself.
    #[serde(skip)]
    Remote(PeerObject),
}

impl Value {
    /// The Python name of this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "NoneType",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::FrozenSet(_) => "frozenset",
            Value::Slice(_) => "slice",
            Value::NotImplemented => "NotImplementedType",
            Value::Ellipsis => "ellipsis",
            Value::Object(_) => "netref",
            Value::Local(Local::Function(_)) => "function",
            Value::Local(Local::Service(_)) => "object",
            Value::Remote(_) => "netref",
        }
    }
}

impl Value {
    /// Calls `visit` on every value inside this one that is not a tuple,
    /// frozenset or slice (itself, if it is none of those), depth first,
    /// stopping at the first error.
    pub(crate) fn try_for_each_item<E>(
        &mut self,
        visit: &mut impl FnMut(&mut Value) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Value::Tuple(items) | Value::FrozenSet(items) => items
                .iter_mut()
                .try_for_each(|item| item.try_for_each_item(visit)),
            Value::Slice(parts) => parts
                .iter_mut()
                .try_for_each(|item| item.try_for_each_item(visit)),
            item => visit(item),
        }
    }

    /// Calls `visit` on every value inside this one that is not a tuple,
    /// frozenset or slice (itself, if it is none of those), depth first.
    pub(crate) fn for_each_item_mut(&mut self, visit: &mut impl FnMut(&mut Value)) {
        let _ = self.try_for_each_item(&mut |item| {
            visit(item);
            Ok::<(), std::convert::Infallible>(())
        });
    }

    /// Whether any value inside this one that is not a tuple, frozenset or
    /// slice (itself, if it is none of those) is one `wanted` picks.
    pub(crate) fn any(&self, wanted: impl Fn(&Value) -> bool + Copy) -> bool {
        match self {
            Value::Tuple(items) | Value::FrozenSet(items) => items.iter().any(|v| v.any(wanted)),
            Value::Slice(parts) => parts.iter().any(|v| v.any(wanted)),
            item => wanted(item),
        }
    }

    /// Roughly how many bytes the value takes in memory, decoded (its
    /// nodes and their text and bytes): what queues of values are bounded by.
    pub(crate) fn weight(&self) -> usize {
        self.weight_with(size_of::<Value>(), 1)
    }

    /// The value's weight when each node costs `per_node` bytes and each
    /// byte of a byte string `per_byte` (as when a byte string becomes a
    /// list of dynamic values, one per byte).
    pub(crate) fn weight_with(&self, per_node: usize, per_byte: usize) -> usize {
        let weigh = |value: &Value| value.weight_with(per_node, per_byte);
        let own = match self {
            Value::BigInt(text) | Value::Str(text) => text.len(),
            Value::Bytes(bytes) => bytes.len().saturating_mul(per_byte),
            Value::Tuple(items) | Value::FrozenSet(items) => items.iter().map(weigh).sum(),
            Value::Slice(parts) => parts.iter().map(weigh).sum(),
            Value::Object(object) => object.class.len(),
            _ => 0,
        };
        per_node + own
    }

    /// Reads keyword arguments as they travel: a tuple of `(name, value)`
    /// pairs (a name may arrive as UTF-8 bytes, as RPyC allows). `None` if the
    /// value has another shape.
    pub fn into_keyword_pairs(self) -> Option<Vec<(String, Value)>> {
        let Value::Tuple(pairs) = self else {
            return None;
        };
        pairs
            .into_iter()
            .map(|pair| match pair {
                Value::Tuple(kv) => match <[Value; 2]>::try_from(kv) {
                    Ok([Value::Str(key), value]) => Some((key, value)),
                    Ok([Value::Bytes(key), value]) => {
                        String::from_utf8(key).ok().map(|key| (key, value))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for Value {
    /// Python's `repr` of the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn items(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{item}")?;
            }
            Ok(())
        }
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::BigInt(s) => f.write_str(s),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Complex(re, im) => write!(f, "({re:?}{im:+?}j)"),
            Value::Str(s) => python_quoted(f, s.chars()),
            Value::Bytes(b) => {
                f.write_str("b")?;
                python_quoted(f, b.iter().map(|&b| char::from(b)))
            }
            Value::Tuple(t) => {
                f.write_str("(")?;
                items(f, t)?;
                f.write_str(if t.len() == 1 { ",)" } else { ")" })
            }
            Value::FrozenSet(s) => {
                f.write_str("frozenset({")?;
                items(f, s)?;
                f.write_str("})")
            }
            Value::Slice(parts) => {
                f.write_str("slice(")?;
                items(f, &parts[..])?;
                f.write_str(")")
            }
            Value::NotImplemented => f.write_str("NotImplemented"),
            Value::Ellipsis => f.write_str("Ellipsis"),
            Value::Object(object) => write!(f, "<netref {} {}>", object.class, object.id),
            Value::Local(local) => write!(f, "<{}>", local.class()),
            Value::Remote(object) => write!(f, "{object:?}"),
        }
    }
}

/// Writes text in single quotes, escaped as Python's `repr` does.
fn python_quoted(f: &mut fmt::Formatter<'_>, chars: impl Iterator<Item = char>) -> fmt::Result {
    f.write_str("'")?;
    for c in chars {
        match c {
            '\'' => f.write_str("\\'")?,
            '"' => f.write_str("\"")?,
            c => write!(f, "{}", c.escape_debug())?,
        }
    }
    f.write_str("'")
}

thread_local! {
    static DECODE_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Deserializes the children of a container, refusing to nest past
/// [`MAX_DEPTH`]. Only containers recurse, so guarding them bounds the stack.
fn nested<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct Level;
    impl Drop for Level {
        fn drop(&mut self) {
            DECODE_DEPTH.with(|d| d.set(d.get() - 1));
        }
    }
    let depth = DECODE_DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    let _level = Level;
    if depth > MAX_DEPTH {
        return Err(serde::de::Error::custom(format_args!(
            "value nests deeper than {MAX_DEPTH} levels"
        )));
    }
    T::deserialize(deserializer)
}

/// A value did not have the shape the receiver asked for.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct ValueError {
    /// What the receiver wanted.
    pub expected: String,
    /// What arrived, as Python would print it.
    pub got: String,
}

impl ValueError {
    pub(crate) fn new(expected: impl Into<String>, got: &Value) -> Self {
        let mut got = got.to_string();
        if got.len() > 80 {
            got.truncate(got.floor_char_boundary(77));
            got.push_str("...");
        }
        ValueError {
            expected: expected.into(),
            got,
        }
    }
}

/// Converts a Rust value into a [`Value`].
pub trait IntoValue {
    /// The value.
    fn into_value(self) -> Value;
}

/// Converts a [`Value`] back into a Rust value, checking its shape.
pub trait FromValue: Sized {
    /// The Rust value, or why the value does not fit.
    fn from_value(value: Value) -> Result<Self, ValueError>;
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        Ok(value)
    }
}

impl IntoValue for PeerObject {
    fn into_value(self) -> Value {
        Value::Remote(self)
    }
}

impl FromValue for PeerObject {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::Remote(object) => Ok(object),
            other => Err(ValueError::new("an object of the peer's", &other)),
        }
    }
}

impl IntoValue for () {
    fn into_value(self) -> Value {
        Value::None
    }
}

impl FromValue for () {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::None => Ok(()),
            other => Err(ValueError::new("None", &other)),
        }
    }
}

impl IntoValue for bool {
    fn into_value(self) -> Value {
        Value::Bool(self)
    }
}

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::Bool(b) => Ok(b),
            other => Err(ValueError::new("bool", &other)),
        }
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            fn into_value(self) -> Value {
                Value::Int(i128::from(self))
            }
        }

        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self, ValueError> {
                match value {
                    Value::Int(i) => <$t>::try_from(i)
                        .map_err(|_| ValueError::new(concat!("an int that fits ", stringify!($t)), &value)),
                    other => Err(ValueError::new("int", &other)),
                }
            }
        }
    )*};
}
integers!(i8, i16, i32, i64, i128, u8, u16, u32, u64);

impl IntoValue for f64 {
    fn into_value(self) -> Value {
        Value::Float(self)
    }
}

impl FromValue for f64 {
    /// Accepts ints too, as Python does where it wants a float.
    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::Float(x) => Ok(x),
            Value::Int(i) => Ok(i as f64),
            other => Err(ValueError::new("float", &other)),
        }
    }
}

impl IntoValue for f32 {
    fn into_value(self) -> Value {
        Value::Float(f64::from(self))
    }
}

impl FromValue for f32 {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        f64::from_value(value).map(|x| x as f32)
    }
}

impl IntoValue for String {
    fn into_value(self) -> Value {
        Value::Str(self)
    }
}

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Str(self.to_owned())
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::Str(s) => Ok(s),
            other => Err(ValueError::new("str", &other)),
        }
    }
}

impl IntoValue for char {
    fn into_value(self) -> Value {
        Value::Str(self.to_string())
    }
}

impl FromValue for char {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        if let Value::Str(s) = &value {
            let mut chars = s.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                return Ok(c);
            }
        }
        Err(ValueError::new("a str of one character", &value))
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    fn into_value(self) -> Value {
        self.map_or(Value::None, IntoValue::into_value)
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::None => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

impl<T: IntoValue> IntoValue for Vec<T> {
    fn into_value(self) -> Value {
        Value::Tuple(self.into_iter().map(IntoValue::into_value).collect())
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    /// Accepts a tuple, or bytes as a sequence of ints (so `Vec<u8>` reads both).
    fn from_value(value: Value) -> Result<Self, ValueError> {
        match value {
            Value::Tuple(items) => items.into_iter().map(T::from_value).collect(),
            Value::Bytes(bytes) => bytes
                .into_iter()
                .map(|b| T::from_value(Value::Int(i128::from(b))))
                .collect(),
            other => Err(ValueError::new("tuple", &other)),
        }
    }
}

/// Arguments of a call: implemented for tuples of [`IntoValue`] items and for
/// `Vec<Value>`.
pub trait IntoArgs {
    /// The positional arguments.
    fn into_args(self) -> Vec<Value>;
}

impl IntoArgs for Vec<Value> {
    fn into_args(self) -> Vec<Value> {
        self
    }
}

macro_rules! tuples {
    ($(($($name:ident),*)),*) => {$(
        impl<$($name: IntoValue),*> IntoArgs for ($($name,)*) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Vec<Value> {
                let ($($name,)*) = self;
                vec![$($name.into_value()),*]
            }
        }

        impl<$($name: IntoValue),*> IntoValue for ($($name,)*) {
            fn into_value(self) -> Value {
                Value::Tuple(self.into_args())
            }
        }

        impl<$($name: FromValue),*> FromValue for ($($name,)*) {
            #[allow(non_snake_case)]
            fn from_value(value: Value) -> Result<Self, ValueError> {
                const LEN: usize = [$(stringify!($name)),*].len();
                match value {
                    Value::Tuple(items) if items.len() == LEN => {
                        let mut items = items.into_iter();
                        $(let $name = $name::from_value(items.next().expect("length checked"))?;)*
                        Ok(($($name,)*))
                    }
                    other => Err(ValueError::new(format!("a tuple of {LEN}"), &other)),
                }
            }
        }
    )*};
}

impl IntoArgs for () {
    fn into_args(self) -> Vec<Value> {
        Vec::new()
    }
}

tuples!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, E),
    (A, B, C, D, E, F),
    (A, B, C, D, E, F, G),
    (A, B, C, D, E, F, G, H)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_reach_every_item_in_tuples_frozensets_and_slices_at_any_depth() {
        let mut value = Value::Tuple(vec![
            Value::Int(1),
            Value::FrozenSet(vec![Value::Int(2), Value::Tuple(vec![Value::Int(3)])]),
            Value::Slice(Box::new([Value::Int(4), Value::None, Value::Int(5)])),
            Value::Tuple(vec![]),
        ]);
        let mut seen = Vec::new();
        value.for_each_item_mut(&mut |item| {
            seen.push(item.to_string());
            if let Value::Int(i) = item {
                *i *= 10;
            }
        });
        assert_eq!(
            seen,
            ["1", "2", "3", "4", "None", "5"],
            "depth first, in order"
        );
        assert_eq!(
            value.to_string(),
            "(10, frozenset({20, (30,)}), slice(40, None, 50), ())"
        );
        assert!(value.any(|v| *v == Value::Int(50)), "inside a slice");
        assert!(
            value.any(|v| *v == Value::Int(30)),
            "inside a frozenset's tuple"
        );
        assert!(
            !value.any(|v| matches!(v, Value::Tuple(_))),
            "containers are not items"
        );
        let mut visits = 0;
        let stopped = value.try_for_each_item(&mut |item| {
            visits += 1;
            if *item == Value::Int(20) {
                Err(())
            } else {
                Ok(())
            }
        });
        assert_eq!((stopped, visits), (Err(()), 2), "stops at the first error");
    }

    #[test]
    fn rust_values_round_trip() {
        let v = (4i64, "x", Some(1.5f64), vec![1u8, 2], None::<u8>).into_value();
        assert_eq!(v.to_string(), "(4, 'x', 1.5, (1, 2), None)");
        let back: (i64, String, Option<f64>, Vec<u8>, Option<u8>) =
            FromValue::from_value(v).unwrap();
        assert_eq!(back, (4, "x".into(), Some(1.5), vec![1, 2], None));
    }

    #[test]
    fn range_and_shape_errors_name_both_sides() {
        let err = u8::from_value(Value::Int(300)).unwrap_err();
        assert_eq!(err.to_string(), "expected an int that fits u8, got 300");
        let err = <(i64, i64)>::from_value(Value::Tuple(vec![Value::Int(1)])).unwrap_err();
        assert_eq!(err.to_string(), "expected a tuple of 2, got (1,)");
        assert_eq!(f64::from_value(Value::Int(3)), Ok(3.0));
        assert!(i64::from_value(Value::Float(3.0)).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_when_decoding() {
        let config = bincode::config::standard();
        let mut deep = Value::None;
        for _ in 0..MAX_DEPTH + 1 {
            deep = Value::Tuple(vec![deep]);
        }
        let bytes = bincode::serde::encode_to_vec(&deep, config).unwrap();
        let err = bincode::serde::decode_from_slice::<Value, _>(&bytes, config).unwrap_err();
        assert!(err.to_string().contains("deeper than"), "{err}");
        let Value::Tuple(inner) = deep else {
            unreachable!()
        };
        let bytes = bincode::serde::encode_to_vec(&inner[0], config).unwrap();
        assert!(bincode::serde::decode_from_slice::<Value, _>(&bytes, config).is_ok());
    }
}
