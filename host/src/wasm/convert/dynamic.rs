//! The shared dynamic `value` record: any value (netrefs included) as a
//! flat list of nodes, parents before children, that every guest language
//! builds and reads without a serialization library.

use wasmtime::component::{Type, Val};

use std::collections::HashMap;

use super::{Keep, Lend, Mismatch, Unreturnable};
use crate::local::Local;
use crate::value::{MAX_DEPTH, Value};

/// The field names of the shared dynamic `value` record.
const DYNAMIC_VALUE_FIELDS: [&str; 2] = ["nodes", "netrefs"];

/// Whether `ty` is the shared dynamic `value` record (recognised by shape:
/// component types carry no names).
pub(crate) fn is_dynamic_value(ty: &Type) -> bool {
    let Type::Record(record) = ty else {
        return false;
    };
    record.fields().map(|f| f.name).eq(DYNAMIC_VALUE_FIELDS)
}

/// Flattens `value` into the `value` record's nodes; the peer's objects
/// become `netref` handles in its `netrefs`.
pub(super) fn to_val(value: Value, lend: &mut dyn Lend) -> Result<Val, Mismatch> {
    let mut flat = Flat {
        nodes: Vec::new(),
        netrefs: Vec::new(),
        lend,
    };
    flat.push(value)?;
    Ok(Val::Record(vec![
        ("nodes".into(), Val::List(flat.nodes)),
        ("netrefs".into(), Val::List(flat.netrefs)),
    ]))
}

/// A value being flattened.
struct Flat<'a> {
    nodes: Vec<Val>,
    netrefs: Vec<Val>,
    lend: &'a mut dyn Lend,
}

fn node(case: &str, payload: Val) -> Val {
    Val::Variant(case.into(), Some(Box::new(payload)))
}

impl Flat<'_> {
    /// Appends `value`'s node, then its children's, fixing up the indices.
    fn push(&mut self, value: Value) -> Result<(), Mismatch> {
        let (case, items) = match value {
            Value::Tuple(items) => ("tuple", items),
            Value::FrozenSet(items) => ("frozenset", items),
            Value::Remote(object) => {
                let index = u32::try_from(self.netrefs.len()).expect("netrefs are bounded");
                self.netrefs.push(self.lend.lend(object)?);
                self.nodes.push(node("netref", Val::U32(index)));
                return Ok(());
            }
            Value::Local(Local::Service(object)) => {
                self.nodes.push(node("object", self.lend.object(&object)?));
                return Ok(());
            }
            leaf => {
                self.nodes.push(leaf_node(leaf)?);
                return Ok(());
            }
        };
        let at = self.nodes.len();
        self.nodes.push(Val::Bool(false));
        let mut children = Vec::with_capacity(items.len());
        for item in items {
            children.push(Val::U32(
                u32::try_from(self.nodes.len()).expect("nodes fit a frame"),
            ));
            self.push(item)?;
        }
        self.nodes[at] = node(case, Val::List(children));
        Ok(())
    }
}

fn leaf_node(value: Value) -> Result<Val, Mismatch> {
    Ok(match value {
        Value::None => Val::Variant("none".into(), None),
        Value::Bool(b) => node("boolean", Val::Bool(b)),
        Value::Int(i) => match i64::try_from(i) {
            Ok(i) => node("int", Val::S64(i)),
            Err(_) => node("big-int", Val::String(i.to_string())),
        },
        Value::BigInt(s) => node("big-int", Val::String(s)),
        Value::Float(x) => node("float", Val::Float64(x)),
        Value::Complex(re, im) => node(
            "complex",
            Val::Tuple(vec![Val::Float64(re), Val::Float64(im)]),
        ),
        Value::Str(s) => node("str", Val::String(s)),
        Value::Bytes(b) => node("bytes", Val::List(b.into_iter().map(Val::U8).collect())),
        Value::Tuple(_)
        | Value::FrozenSet(_)
        | Value::Remote(_)
        | Value::Local(Local::Service(_)) => {
            unreachable!("containers and objects are pushed by `push`")
        }
        other @ (Value::Slice(_)
        | Value::NotImplemented
        | Value::Ellipsis
        | Value::Object(_)
        | Value::Local(_)) => {
            return Err(Mismatch::new(
                "a value a service can receive (not a slice, NotImplemented, Ellipsis or one of its own netrefs)",
                &other,
            ));
        }
    })
}

/// Rebuilds the value from the nodes a guest handed over, checking that
/// every child index points after its parent and inside the list; its
/// netrefs and the guest's objects go to `keep` (all of them, used or not).
pub(super) fn from_val(val: Val, keep: &mut dyn Keep) -> Result<Value, Unreturnable> {
    let Val::Record(fields) = val else {
        unreachable!("called for records only")
    };
    let (mut nodes, mut netrefs) = (None, Vec::new());
    for (name, field) in fields {
        match (name.as_str(), field) {
            ("nodes", Val::List(list)) => nodes = Some(list),
            ("netrefs", Val::List(list)) => {
                for item in list {
                    let Val::Resource(netref) = item else {
                        return Err(Unreturnable::Malformed(
                            "a netref that is not a resource".into(),
                        ));
                    };
                    netrefs.push(keep.netref(netref));
                }
            }
            _ => {}
        }
    }
    let netrefs: Vec<Value> = netrefs.into_iter().collect::<Result<_, _>>()?;
    let nodes = nodes.ok_or_else(|| Unreturnable::Malformed("a value without nodes".into()))?;
    if nodes.is_empty() {
        return Err(Unreturnable::Malformed("a value with no nodes".into()));
    }
    let mut objects = HashMap::new();
    for (at, node) in nodes.iter().enumerate() {
        if let Val::Variant(case, Some(payload)) = node
            && case == "object"
        {
            let (handle, class) = guest_object(payload)?;
            objects.insert(at, keep.object(handle, class)?);
        }
    }
    let built = Built {
        nodes: &nodes,
        netrefs: &netrefs,
        objects: &objects,
    };
    built.build(0, 0, &mut nodes.len())
}

/// The handle and class of a `guest-object` record.
fn guest_object(record: &Val) -> Result<(u64, String), Unreturnable> {
    if let Val::Record(fields) = record
        && let [(_, Val::U64(handle)), (_, Val::String(class))] = fields.as_slice()
    {
        return Ok((*handle, class.clone()));
    }
    Err(Unreturnable::Malformed(
        "an object that is not a guest-object".into(),
    ))
}

/// The parts of a value being rebuilt.
struct Built<'a> {
    nodes: &'a [Val],
    netrefs: &'a [Value],
    /// The guest's objects, by the index of their node.
    objects: &'a HashMap<usize, Value>,
}

impl Built<'_> {
    /// Builds node `at`. Every build spends one unit of `budget` (the node
    /// count), so nodes shared between parents cannot multiply the work.
    fn build(&self, at: usize, depth: usize, budget: &mut usize) -> Result<Value, Unreturnable> {
        let nodes = self.nodes;
        if depth > MAX_DEPTH {
            return Err(Unreturnable::Malformed(format!(
                "nodes nest deeper than {MAX_DEPTH} levels"
            )));
        }
        *budget = budget
            .checked_sub(1)
            .ok_or_else(|| Unreturnable::Malformed("nodes are referenced more than once".into()))?;
        let mut children = |list: &Val| -> Result<Vec<Value>, Unreturnable> {
            let Val::List(indices) = list else {
                return Err(Unreturnable::Malformed("children are not a list".into()));
            };
            indices
                .iter()
                .map(|index| match index {
                    Val::U32(i) if (*i as usize) > at && (*i as usize) < nodes.len() => {
                        self.build(*i as usize, depth + 1, budget)
                    }
                    other => Err(Unreturnable::Malformed(format!(
                        "node {at} names child {other:?}, not a later node"
                    ))),
                })
                .collect()
        };
        let Val::Variant(case, payload) = &nodes[at] else {
            return Err(Unreturnable::Malformed(format!("node {at} is not a node")));
        };
        Ok(match (case.as_str(), payload.as_deref()) {
            ("none", None) => Value::None,
            ("boolean", Some(Val::Bool(b))) => Value::Bool(*b),
            ("int", Some(Val::S64(i))) => Value::Int((*i).into()),
            ("big-int", Some(Val::String(s))) => match s.parse::<i128>() {
                Ok(i) => Value::Int(i),
                Err(_) if is_decimal(s) => Value::BigInt(s.clone()),
                Err(_) => {
                    return Err(Unreturnable::Malformed(format!(
                        "big-int {s:?} is not decimal"
                    )));
                }
            },
            ("float", Some(Val::Float64(x))) => Value::Float(*x),
            ("complex", Some(Val::Tuple(parts))) => match parts.as_slice() {
                [Val::Float64(re), Val::Float64(im)] => Value::Complex(*re, *im),
                _ => {
                    return Err(Unreturnable::Malformed(
                        "a complex that is not two f64".into(),
                    ));
                }
            },
            ("str", Some(Val::String(s))) => Value::Str(s.clone()),
            ("bytes", Some(Val::List(bytes))) => Value::Bytes(
                bytes
                    .iter()
                    .map(|b| match b {
                        Val::U8(b) => Ok(*b),
                        _ => Err(Unreturnable::Malformed("bytes that are not u8".into())),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            ("tuple", Some(list)) => Value::Tuple(children(list)?),
            ("frozenset", Some(list)) => Value::FrozenSet(children(list)?),
            ("netref", Some(Val::U32(i))) => match self.netrefs.get(*i as usize) {
                Some(netref) => netref.clone(),
                None => {
                    return Err(Unreturnable::Malformed(format!(
                        "node {at} names netref {i}, not one given"
                    )));
                }
            },
            ("object", Some(_)) => self.objects[&at].clone(),
            (case, _) => {
                return Err(Unreturnable::Malformed(format!(
                    "node {at} has unknown case {case}"
                )));
            }
        })
    }
}

fn is_decimal(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use wasmtime::component::{ResourceAny, ResourceType};

    use super::*;
    use crate::held::PeerObject;
    use crate::local::ServiceObject;

    /// Lends the peer's objects as their index in `lent`.
    #[derive(Default)]
    struct Indexed {
        lent: Vec<PeerObject>,
    }

    impl Lend for Indexed {
        fn lend(&mut self, object: PeerObject) -> Result<Val, Mismatch> {
            self.lent.push(object);
            Ok(Val::U32(self.lent.len() as u32 - 1))
        }

        fn resource(&mut self, value: Value, _: &ResourceType) -> Result<Val, Mismatch> {
            Err(Mismatch::new("no resource", &value))
        }

        fn borrow(&mut self, value: Value, _: &ResourceType) -> Result<Val, Mismatch> {
            Err(Mismatch::new("no resource", &value))
        }

        fn object(&mut self, object: &ServiceObject) -> Result<Val, Mismatch> {
            Ok(Val::Record(vec![
                ("handle".into(), Val::U64(object.handle + 100)),
                ("class-name".into(), Val::String(object.class.clone())),
            ]))
        }
    }

    /// Takes no netrefs (the values rebuilt here hold none); a guest's
    /// object becomes a service object of the same handle.
    struct NoNetrefs;

    impl Keep for NoNetrefs {
        fn resource(&mut self, _: ResourceAny, _: &ResourceType) -> Result<Value, Unreturnable> {
            Err(Unreturnable::Malformed("no resource".into()))
        }

        fn netref(&mut self, _: ResourceAny) -> Result<Value, Unreturnable> {
            Err(Unreturnable::Malformed("no netref".into()))
        }

        fn object(&mut self, handle: u64, class: String) -> Result<Value, Unreturnable> {
            Ok(Value::Local(Local::Service(ServiceObject {
                handle,
                class,
            })))
        }
    }

    #[test]
    fn the_guests_objects_travel_as_their_handles() {
        let object = |handle| {
            Value::Local(Local::Service(ServiceObject {
                handle,
                class: "builtins.list".into(),
            }))
        };
        let value = Value::Tuple(vec![Value::Int(1), object(7)]);
        let val = to_val(value, &mut Indexed::default()).unwrap();
        let Val::Record(fields) = &val else { panic!() };
        let Val::List(nodes) = &fields[0].1 else {
            panic!()
        };
        let handle = Val::Record(vec![
            ("handle".into(), Val::U64(107)),
            ("class-name".into(), Val::String("builtins.list".into())),
        ]);
        assert_eq!(nodes[2], node("object", Some(handle)));
        let back = from_val(val, &mut NoNetrefs).unwrap();
        assert_eq!(back, Value::Tuple(vec![Value::Int(1), object(107)]));
    }

    fn record(nodes: Vec<Val>) -> Val {
        Val::Record(vec![
            ("nodes".into(), Val::List(nodes)),
            ("netrefs".into(), Val::List(Vec::new())),
        ])
    }

    fn node(case: &str, payload: Option<Val>) -> Val {
        Val::Variant(case.into(), payload.map(Box::new))
    }

    fn children(indices: &[u32]) -> Option<Val> {
        Some(Val::List(indices.iter().map(|&i| Val::U32(i)).collect()))
    }

    #[test]
    fn nested_values_flatten_and_come_back_unchanged() {
        let value = Value::Tuple(vec![
            Value::None,
            Value::Bool(true),
            Value::Int(-7),
            Value::Int(i128::from(i64::MAX) + 1),
            Value::BigInt("123456789012345678901234567890123456789012".into()),
            Value::Float(1.5),
            Value::Complex(1.0, -2.0),
            Value::Str("é".into()),
            Value::Bytes(vec![0, 255]),
            Value::FrozenSet(vec![Value::Tuple(vec![]), Value::Str("x".into())]),
        ]);
        let val = to_val(value.clone(), &mut Indexed::default()).unwrap();
        assert_eq!(from_val(val, &mut NoNetrefs).unwrap(), value);
    }

    #[test]
    fn the_peers_objects_become_netrefs_in_order() {
        let (a, b) = (
            PeerObject::never_released(1, "builtins.list"),
            PeerObject::never_released(2, "builtins.function"),
        );
        let value = Value::Tuple(vec![Value::Remote(a.clone()), Value::Remote(b.clone())]);
        let mut lend = Indexed::default();
        let Val::Record(fields) = to_val(value, &mut lend).unwrap() else {
            panic!("not a record")
        };
        assert_eq!(lend.lent, [a, b]);
        assert_eq!(fields[1].1, Val::List(vec![Val::U32(0), Val::U32(1)]));
        let Val::List(nodes) = &fields[0].1 else {
            panic!("no nodes")
        };
        assert_eq!(nodes[1], node("netref", Some(Val::U32(0))));
        assert_eq!(nodes[2], node("netref", Some(Val::U32(1))));
    }

    #[test]
    fn what_brine_cannot_carry_is_refused() {
        for value in [
            Value::Slice(Box::new([Value::None, Value::None, Value::None])),
            Value::Ellipsis,
            Value::NotImplemented,
        ] {
            let refused = to_val(value.clone(), &mut Indexed::default()).unwrap_err();
            assert!(
                refused.expected.contains("a value a service can receive"),
                "{value}"
            );
        }
    }

    #[test]
    fn malformed_nodes_are_refused_with_a_reason() {
        let cases = [
            (record(vec![]), "no nodes"),
            (
                record(vec![node("tuple", children(&[0]))]),
                "not a later node",
            ),
            (
                record(vec![node("tuple", children(&[5]))]),
                "not a later node",
            ),
            (
                record(vec![node("tuple", children(&[1, 1])), node("none", None)]),
                "referenced more than once",
            ),
            (record(vec![node("sausage", None)]), "unknown case sausage"),
            (
                record(vec![node("netref", Some(Val::U32(0)))]),
                "not one given",
            ),
            (
                record(vec![node("big-int", Some(Val::String("12a".into())))]),
                "not decimal",
            ),
        ];
        for (val, reason) in cases {
            let Unreturnable::Malformed(message) = from_val(val, &mut NoNetrefs).unwrap_err()
            else {
                panic!("refused, not malformed")
            };
            assert!(message.contains(reason), "{message} (wanted: {reason})");
        }
        let deep: Vec<Val> = (0..=MAX_DEPTH as u32 + 1)
            .map(|i| node("tuple", children(&[i + 1])))
            .chain([node("none", None)])
            .collect();
        let Unreturnable::Malformed(message) = from_val(record(deep), &mut NoNetrefs).unwrap_err()
        else {
            panic!("refused, not malformed")
        };
        assert!(message.contains("nest deeper"), "{message}");
    }
}
