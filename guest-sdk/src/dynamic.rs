//! [`Dynamic`]: the dynamic [`Value`] as a Rust tree.

use crate::{GuestObject, Netref, Node, Value};

/// Any value a peer can send, as a tree (a [`Value`] is the same, flattened
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

impl From<Value> for Dynamic {
    fn from(value: Value) -> Self {
        let mut netrefs: Vec<Option<Netref>> = value.netrefs.into_iter().map(Some).collect();
        tree(&value.nodes, 0, &mut netrefs)
    }
}

/// The tree under `nodes[at]`. Children come after their parent; a node
/// that breaks that (or is missing) reads as `None` rather than looping.
fn tree(nodes: &[Node], at: u32, netrefs: &mut [Option<Netref>]) -> Dynamic {
    let children = |ids: &[u32], netrefs: &mut [Option<Netref>]| -> Vec<Dynamic> {
        ids.iter()
            .map(|&child| match child > at {
                true => tree(nodes, child, netrefs),
                false => Dynamic::None,
            })
            .collect()
    };
    match nodes.get(at as usize) {
        None | Some(Node::None) => Dynamic::None,
        Some(Node::Boolean(b)) => Dynamic::Bool(*b),
        Some(Node::Int(i)) => Dynamic::Int(*i),
        Some(Node::BigInt(digits)) => Dynamic::BigInt(digits.clone()),
        Some(Node::Float(x)) => Dynamic::Float(*x),
        Some(Node::Complex((re, im))) => Dynamic::Complex(*re, *im),
        Some(Node::Str(s)) => Dynamic::Str(s.clone()),
        Some(Node::Bytes(b)) => Dynamic::Bytes(b.clone()),
        Some(Node::Tuple(ids)) => Dynamic::Tuple(children(ids, netrefs)),
        Some(Node::Frozenset(ids)) => Dynamic::FrozenSet(children(ids, netrefs)),
        Some(Node::Netref(i)) => netrefs
            .get_mut(*i as usize)
            .and_then(Option::take)
            .map_or(Dynamic::None, Dynamic::Netref),
        Some(Node::Object(object)) => Dynamic::Object(object.clone()),
    }
}

impl From<Dynamic> for Value {
    fn from(dynamic: Dynamic) -> Self {
        let mut value = Value {
            nodes: Vec::new(),
            netrefs: Vec::new(),
        };
        flatten(dynamic, &mut value);
        value
    }
}

/// Appends `dynamic` to `value` (the parent before its children); its index.
fn flatten(dynamic: Dynamic, value: &mut Value) -> u32 {
    let at = value.nodes.len();
    value.nodes.push(Node::None);
    let mut all = |items: Vec<Dynamic>| -> Vec<u32> {
        items.into_iter().map(|item| flatten(item, value)).collect()
    };
    let node = match dynamic {
        Dynamic::None => Node::None,
        Dynamic::Bool(b) => Node::Boolean(b),
        Dynamic::Int(i) => Node::Int(i),
        Dynamic::BigInt(digits) => Node::BigInt(digits),
        Dynamic::Float(x) => Node::Float(x),
        Dynamic::Complex(re, im) => Node::Complex((re, im)),
        Dynamic::Str(s) => Node::Str(s),
        Dynamic::Bytes(b) => Node::Bytes(b),
        Dynamic::Tuple(items) => Node::Tuple(all(items)),
        Dynamic::FrozenSet(items) => Node::Frozenset(all(items)),
        Dynamic::Netref(netref) => {
            value.netrefs.push(netref);
            Node::Netref((value.netrefs.len() - 1) as u32)
        }
        Dynamic::Object(object) => Node::Object(object),
    };
    value.nodes[at] = node;
    at as u32
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
        ]);
        let shown = format!("{tree:?}");
        let value = Value::from(tree);
        assert!(matches!(value.nodes[0], Node::Tuple(_)), "the root comes first");
        assert_eq!(format!("{:?}", Dynamic::from(value)), shown);
    }

    #[test]
    fn a_child_that_points_back_reads_as_none() {
        let looping = Value {
            nodes: vec![Node::Tuple(vec![0, 1]), Node::Int(7)],
            netrefs: Vec::new(),
        };
        let Dynamic::Tuple(items) = Dynamic::from(looping) else {
            panic!("a tuple");
        };
        assert!(matches!(items[..], [Dynamic::None, Dynamic::Int(7)]));
    }
}
