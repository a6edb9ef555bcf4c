//! [`Dynamic`]: the dynamic [`Value`] as a Rust tree.

use crate::packed::{Reader, Writer, tag};
use crate::{Netref, Value};

/// Any value a peer can send, as a tree (a [`Value`] is the same, packed
/// for WIT). Convert with `Dynamic::from(value)` and `Value::from(dynamic)`.
///
/// ```
/// use wasm_rpyc_guest::{Dynamic, Value};
///
/// let pair = Dynamic::Tuple(vec![Dynamic::from("spam"), Dynamic::from(3)]);
/// let value = Value::from(pair);             // what a `value` export returns
/// match Dynamic::from(value) {               // what a `value` parameter holds
///     Dynamic::Tuple(items) => assert!(matches!(items[1], Dynamic::Int(3))),
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug)]
pub enum Dynamic {
    /// Python's `None`.
    None,
    /// A `bool`.
    Bool(bool),
    /// An `int` that fits 64 bits.
    Int(i64),
    /// A larger `int`, in decimal.
    BigInt(String),
    /// A `float`.
    Float(f64),
    /// A `complex`: (real, imaginary).
    Complex(f64, f64),
    /// A `str`.
    Str(String),
    /// A `bytes`.
    Bytes(Vec<u8>),
    /// A `tuple` (a list the peer passed by reference arrives as a netref).
    Tuple(Vec<Dynamic>),
    /// A `frozenset`.
    FrozenSet(Vec<Dynamic>),
    /// One of the peer's objects.
    Netref(Netref),
    /// One of this service's own objects, by the handle its `objects`
    /// export knows it by (only a service exporting `objects` lends them).
    Object(GuestObject),
}

/// One of the service's own objects, lent to the peer by reference.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestObject {
    /// The handle the service's `objects` export knows it by; 0 is the
    /// connection's service object.
    pub handle: u64,
    /// Its class, dotted as Python names it (`builtins.list`); a peer
    /// builds its proxy from it.
    pub class_name: String,
}

impl From<Value> for Dynamic {
    /// The tree the value holds. The host sends well-formed bytes; bytes
    /// that break the format make the whole value `None` (a count past
    /// the bytes left is cut to them).
    fn from(value: Value) -> Self {
        let mut netrefs: Vec<Option<Netref>> = value.netrefs.into_iter().map(Some).collect();
        tree(&mut Reader::new(&value.packed), &mut netrefs).unwrap_or(Dynamic::None)
    }
}

/// The next item's tree.
fn tree(reader: &mut Reader, netrefs: &mut [Option<Netref>]) -> Option<Dynamic> {
    let items = |reader: &mut Reader, netrefs: &mut [Option<Netref>]| {
        // Each item is at least a byte: a larger count is not believed.
        let count = reader.u32()?.min(reader.left());
        (0..count)
            .map(|_| tree(reader, netrefs))
            .collect::<Option<Vec<_>>>()
    };
    Some(match reader.u8()? {
        tag::NONE => Dynamic::None,
        tag::FALSE => Dynamic::Bool(false),
        tag::TRUE => Dynamic::Bool(true),
        tag::INT => Dynamic::Int(i64::from_le_bytes(reader.array()?)),
        tag::BIG_INT => Dynamic::BigInt(reader.text()?.to_owned()),
        tag::FLOAT => Dynamic::Float(f64::from_le_bytes(reader.array()?)),
        tag::COMPLEX => {
            let re = f64::from_le_bytes(reader.array()?);
            Dynamic::Complex(re, f64::from_le_bytes(reader.array()?))
        }
        tag::STR => Dynamic::Str(reader.text()?.to_owned()),
        tag::BYTES => Dynamic::Bytes(reader.sized()?.to_vec()),
        tag::TUPLE => Dynamic::Tuple(items(reader, netrefs)?),
        tag::FROZENSET => Dynamic::FrozenSet(items(reader, netrefs)?),
        tag::NETREF => netrefs
            .get_mut(reader.u32()?)
            .and_then(Option::take)
            .map_or(Dynamic::None, Dynamic::Netref),
        tag::OBJECT => {
            let handle = u64::from_le_bytes(reader.array()?);
            let class_name = reader.text()?.to_owned();
            Dynamic::Object(GuestObject { handle, class_name })
        }
        _ => return None,
    })
}

impl From<Dynamic> for Value {
    fn from(dynamic: Dynamic) -> Self {
        let (mut writer, mut netrefs) = (Writer::default(), Vec::new());
        pack(dynamic, &mut writer, &mut netrefs);
        Value {
            packed: writer.finish(),
            netrefs,
        }
    }
}

/// Appends `dynamic`'s item (then its children's) to `writer`.
fn pack(dynamic: Dynamic, writer: &mut Writer, netrefs: &mut Vec<Netref>) {
    match dynamic {
        Dynamic::None => writer.tag(tag::NONE),
        Dynamic::Bool(b) => writer.tag(if b { tag::TRUE } else { tag::FALSE }),
        Dynamic::Int(i) => writer.tag(tag::INT).raw(&i.to_le_bytes()),
        Dynamic::BigInt(digits) => writer.tag(tag::BIG_INT).sized(digits.as_bytes()),
        Dynamic::Float(x) => writer.tag(tag::FLOAT).raw(&x.to_le_bytes()),
        Dynamic::Complex(re, im) => writer
            .tag(tag::COMPLEX)
            .raw(&re.to_le_bytes())
            .raw(&im.to_le_bytes()),
        Dynamic::Str(s) => writer.tag(tag::STR).sized(s.as_bytes()),
        Dynamic::Bytes(b) => writer.tag(tag::BYTES).sized(&b),
        Dynamic::Tuple(list) => items(tag::TUPLE, list, writer, netrefs),
        Dynamic::FrozenSet(list) => items(tag::FROZENSET, list, writer, netrefs),
        Dynamic::Netref(netref) => {
            netrefs.push(netref);
            writer.tag(tag::NETREF).u32(netrefs.len() - 1)
        }
        Dynamic::Object(object) => writer
            .tag(tag::OBJECT)
            .raw(&object.handle.to_le_bytes())
            .sized(object.class_name.as_bytes()),
    };
}

/// A tuple's or frozenset's count, then its items.
fn items<'w>(
    tag: u8,
    items: Vec<Dynamic>,
    writer: &'w mut Writer,
    netrefs: &mut Vec<Netref>,
) -> &'w mut Writer {
    writer.tag(tag).u32(items.len());
    for item in items {
        pack(item, writer, netrefs);
    }
    writer
}

impl From<&str> for Dynamic {
    fn from(s: &str) -> Self {
        Dynamic::Str(s.to_owned())
    }
}

impl From<String> for Dynamic {
    fn from(s: String) -> Self {
        Dynamic::Str(s)
    }
}

impl From<i64> for Dynamic {
    fn from(i: i64) -> Self {
        Dynamic::Int(i)
    }
}

impl From<f64> for Dynamic {
    fn from(x: f64) -> Self {
        Dynamic::Float(x)
    }
}

impl From<bool> for Dynamic {
    fn from(b: bool) -> Self {
        Dynamic::Bool(b)
    }
}

impl From<Netref> for Dynamic {
    fn from(netref: Netref) -> Self {
        Dynamic::Netref(netref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_values_survive_the_round_trip() {
        let tree = Dynamic::Tuple(vec![
            Dynamic::Int(1),
            Dynamic::Tuple(vec![Dynamic::from("a"), Dynamic::Bytes(vec![0, 1])]),
            Dynamic::FrozenSet(vec![Dynamic::Complex(1.0, -1.0), Dynamic::None]),
            Dynamic::BigInt("1".repeat(30)),
            Dynamic::Object(GuestObject {
                handle: 7,
                class_name: "builtins.list".into(),
            }),
            Dynamic::Bool(false),
            Dynamic::Float(0.5),
        ]);
        let shown = format!("{tree:?}");
        let value = Value::from(tree);
        assert_eq!(value.packed[..5], [9, 7, 0, 0, 0], "a tuple of 7 items");
        assert_eq!(format!("{:?}", Dynamic::from(value)), shown);
    }

    #[test]
    fn bytes_that_run_out_read_as_none() {
        let cut = Value {
            packed: vec![9, 200, 0, 0, 0, 3, 7],
            netrefs: Vec::new(),
        };
        assert!(matches!(Dynamic::from(cut), Dynamic::None));
    }
}
