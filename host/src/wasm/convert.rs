//! Converting between wire [`Value`]s and component [`Val`]s, by the WIT type
//! of the export's own signature.
//!
//! The mapping (Python's view; the Rust client sees the same [`Value`]s):
//!
//! | WIT | value |
//! |---|---|
//! | `bool` | `bool` |
//! | `s8` ... `u64` | `int`, range-checked (`OverflowError` outside) |
//! | `f32`, `f64` | `float`; an `int` is accepted |
//! | `char` | `str` of one character |
//! | `string` | `str` |
//! | `list<u8>` | `bytes` (a tuple of ints is accepted) |
//! | `list<T>`, `tuple<...>` | `tuple` (a list is accepted where the codec can read it) |
//! | `record` | `tuple` of the field values in declaration order |
//! | `variant`, `result` | the case name as `str` when it has no payload, else `(name, payload)`; `result` cases are `ok` and `err` |
//! | `enum` | the case name as `str` |
//! | `flags` | `frozenset` of the set flag names (a tuple is accepted) |
//! | `option<T>` | `None` or the value (so `option<option<T>>` cannot tell `some(none)` from `none`) |
//! | `value` (the shared dynamic type) | any value |
//! | `netref` | an object of the peer's, by reference; handed back, it is the peer's own object again |
//! | `borrow<exposed-…>` (parameter), `exposed-…` (result) | an instance of one of the service's exposed classes, by reference |
//!
//! A value that does not fit is a [`Mismatch`], which the caller receives as a
//! `TypeError` (or `OverflowError` for an integer out of range), never a trap.

use wasmtime::component::{ResourceAny, ResourceType, Type, Val};

use crate::held::PeerObject;
use crate::local::ServiceObject;
use crate::value::Value;

/// A value that does not fit the WIT type asked for.
#[derive(Debug, PartialEq)]
pub(crate) struct Mismatch {
    /// Where in the value, such as `[2].name`; empty for the value itself.
    pub(crate) path: String,
    /// What the type wanted.
    pub(crate) expected: String,
    /// What was found, as Python would print it.
    pub(crate) got: String,
    /// An integer out of its type's range, rather than a wrong type.
    pub(crate) overflow: bool,
}

impl Mismatch {
    pub(crate) fn new(expected: impl Into<String>, got: &Value) -> Self {
        let mut shown = got.to_string();
        if shown.len() > 60 {
            shown.truncate(shown.floor_char_boundary(57));
            shown.push_str("...");
        }
        Mismatch {
            path: String::new(),
            expected: expected.into(),
            got: format!("{} {shown}", got.type_name()),
            overflow: false,
        }
    }

    fn within(mut self, step: impl std::fmt::Display) -> Self {
        self.path = format!("{step}{}", self.path);
        self
    }
}

/// Hands resources to a guest (it needs the guest's store): the peer's
/// objects as `netref` handles, and the guest's own objects back as
/// themselves.
pub(crate) trait Lend {
    /// An owned `netref` handle (a `Val::Resource`) naming `object`.
    fn lend(&mut self, object: PeerObject) -> Result<Val, Mismatch>;

    /// `value` as the resource `ty` (a `netref` or an exposed class), the
    /// guest's to keep.
    fn resource(&mut self, value: Value, ty: &ResourceType) -> Result<Val, Mismatch>;

    /// `value` lent as the resource `ty` for the call only (`borrow<...>`).
    fn borrow(&mut self, value: Value, ty: &ResourceType) -> Result<Val, Mismatch>;

    /// The guest's handle for `object`, one of the objects it serves,
    /// passed back to it.
    fn object(&mut self, object: &ServiceObject) -> Result<u64, Mismatch>;
}

/// Takes the resources a guest hands over (it needs the guest's store).
pub(crate) trait Keep {
    /// The value for the resource `resource` of type `ty` the guest gave up.
    fn resource(&mut self, resource: ResourceAny, ty: &ResourceType)
    -> Result<Value, Unreturnable>;

    /// The value for a `netref` the guest gave up: the peer's own object.
    fn netref(&mut self, resource: ResourceAny) -> Result<Value, Unreturnable>;

    /// The value for one of the objects the guest serves, lent to the peer
    /// (`object.handle` is the guest's).
    fn object(&mut self, object: ServiceObject) -> Result<Value, Unreturnable>;
}

/// Takes no resources: where a guest cannot hand any over.
pub(crate) struct Refuse;

impl Keep for Refuse {
    fn resource(&mut self, _: ResourceAny, _: &ResourceType) -> Result<Value, Unreturnable> {
        Err(Unreturnable::Malformed(
            "a resource cannot be passed here".into(),
        ))
    }

    fn netref(&mut self, _: ResourceAny) -> Result<Value, Unreturnable> {
        Err(Unreturnable::Malformed(
            "a netref cannot be passed here".into(),
        ))
    }

    fn object(&mut self, _: ServiceObject) -> Result<Value, Unreturnable> {
        Err(Unreturnable::Malformed(
            "an object cannot be passed here".into(),
        ))
    }
}

/// A short WIT spelling of `ty` for messages.
fn wit_name(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", wit_name(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", wit_name(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", wit_name(&m.key()), wit_name(&m.value())),
        Type::Tuple(t) => format!(
            "tuple<{}>",
            t.types()
                .map(|t| wit_name(&t))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Record(r) => format!(
            "record {{{}}}",
            r.fields().map(|f| f.name).collect::<Vec<_>>().join(", ")
        ),
        Type::Variant(v) => format!(
            "variant {{{}}}",
            v.cases().map(|c| c.name).collect::<Vec<_>>().join(", ")
        ),
        Type::Enum(e) => format!("enum {{{}}}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{{}}}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", wit_name(&o.ty())),
        Type::Result(_) => "result".into(),
        Type::Own(_) | Type::Borrow(_) => "resource".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

/// Converts `value` to a [`Val`] of type `ty`.
pub(crate) fn to_val(value: Value, ty: &Type, lend: &mut dyn Lend) -> Result<Val, Mismatch> {
    macro_rules! int {
        ($variant:ident, $t:ty) => {
            match value {
                Value::Int(i) => <$t>::try_from(i).map(Val::$variant).map_err(|_| Mismatch {
                    overflow: true,
                    ..Mismatch::new(format!("an int in {}..={}", <$t>::MIN, <$t>::MAX), &value)
                }),
                Value::BigInt(_) => Err(Mismatch {
                    overflow: true,
                    ..Mismatch::new(format!("an int in {}..={}", <$t>::MIN, <$t>::MAX), &value)
                }),
                other => Err(Mismatch::new(format!("int ({})", wit_name(ty)), &other)),
            }
        };
    }
    match ty {
        Type::Bool => match value {
            Value::Bool(b) => Ok(Val::Bool(b)),
            other => Err(Mismatch::new("bool", &other)),
        },
        Type::S8 => int!(S8, i8),
        Type::U8 => int!(U8, u8),
        Type::S16 => int!(S16, i16),
        Type::U16 => int!(U16, u16),
        Type::S32 => int!(S32, i32),
        Type::U32 => int!(U32, u32),
        Type::S64 => int!(S64, i64),
        Type::U64 => int!(U64, u64),
        Type::Float32 => float(value, ty).map(|x| Val::Float32(x as f32)),
        Type::Float64 => float(value, ty).map(Val::Float64),
        Type::Char => {
            if let Value::Str(s) = &value {
                let mut chars = s.chars();
                if let (Some(c), None) = (chars.next(), chars.next()) {
                    return Ok(Val::Char(c));
                }
            }
            Err(Mismatch::new("str of one character (char)", &value))
        }
        Type::String => match value {
            Value::Str(s) => Ok(Val::String(s)),
            other => Err(Mismatch::new("str", &other)),
        },
        Type::List(list) => {
            let item = list.ty();
            match value {
                Value::Bytes(bytes) if item == Type::U8 => {
                    Ok(Val::List(bytes.into_iter().map(Val::U8).collect()))
                }
                Value::Tuple(items) => items_to_vals(items, lend, |_| item.clone()).map(Val::List),
                other => Err(Mismatch::new(format!("tuple ({})", wit_name(ty)), &other)),
            }
        }
        Type::FixedLengthList(list) => match value {
            Value::Tuple(items) if items.len() == list.len() as usize => {
                items_to_vals(items, lend, |_| list.ty()).map(Val::FixedLengthList)
            }
            other => Err(Mismatch::new(
                format!("tuple of {} ({})", list.len(), wit_name(ty)),
                &other,
            )),
        },
        Type::Map(map) => match value {
            Value::Tuple(pairs) => {
                let mut vals = Vec::with_capacity(pairs.len());
                for (i, pair) in pairs.into_iter().enumerate() {
                    let Value::Tuple(kv) = pair else {
                        return Err(Mismatch::new("a (key, value) tuple", &pair)
                            .within(format_args!("[{i}]")));
                    };
                    let [key, value] = <[Value; 2]>::try_from(kv).map_err(|kv| {
                        Mismatch::new("a (key, value) tuple", &Value::Tuple(kv))
                            .within(format_args!("[{i}]"))
                    })?;
                    let key = to_val(key, &map.key(), lend)
                        .map_err(|e| e.within(format_args!("[{i}][key]")))?;
                    let value = to_val(value, &map.value(), lend)
                        .map_err(|e| e.within(format_args!("[{i}][value]")))?;
                    vals.push((key, value));
                }
                Ok(Val::Map(vals))
            }
            other => Err(Mismatch::new(
                format!("tuple of (key, value) ({})", wit_name(ty)),
                &other,
            )),
        },
        Type::Tuple(tuple) => {
            let types: Vec<Type> = tuple.types().collect();
            match value {
                Value::Tuple(items) if items.len() == types.len() => {
                    items_to_vals(items, lend, |i| types[i].clone()).map(Val::Tuple)
                }
                other => Err(Mismatch::new(
                    format!("tuple of {} ({})", types.len(), wit_name(ty)),
                    &other,
                )),
            }
        }
        Type::Record(_) if is_dynamic_value(ty) => dynamic::to_val(value, lend),
        Type::Record(record) => {
            let fields: Vec<_> = record.fields().map(|f| (f.name.to_owned(), f.ty)).collect();
            match value {
                Value::Tuple(items) if items.len() == fields.len() => {
                    let vals = items_to_vals(items, lend, |i| fields[i].1.clone())?;
                    Ok(Val::Record(
                        fields.into_iter().map(|(name, _)| name).zip(vals).collect(),
                    ))
                }
                other => Err(Mismatch::new(
                    format!("tuple of {} fields ({})", fields.len(), wit_name(ty)),
                    &other,
                )),
            }
        }
        Type::Variant(variant) => {
            let cases: Vec<(String, Option<Type>)> =
                variant.cases().map(|c| (c.name.to_owned(), c.ty)).collect();
            let (name, payload) = case(value, &cases, ty, lend)?;
            Ok(Val::Variant(name, payload))
        }
        Type::Result(result) => {
            let cases = [
                ("ok".to_owned(), result.ok()),
                ("err".to_owned(), result.err()),
            ];
            let (name, payload) = case(value, &cases, ty, lend)?;
            Ok(Val::Result(if name == "ok" {
                Ok(payload)
            } else {
                Err(payload)
            }))
        }
        Type::Enum(e) => match value {
            Value::Str(name) if e.names().any(|n| n == name) => Ok(Val::Enum(name)),
            other => Err(Mismatch::new(
                format!("one of the names of {}", wit_name(ty)),
                &other,
            )),
        },
        Type::Flags(flags) => match value {
            Value::FrozenSet(items) | Value::Tuple(items) => {
                let mut set = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::Str(name) if flags.names().any(|n| n == name) => set.push(name),
                        other => {
                            return Err(Mismatch::new(
                                format!("names of {}", wit_name(ty)),
                                &other,
                            ));
                        }
                    }
                }
                set.dedup();
                Ok(Val::Flags(set))
            }
            other => Err(Mismatch::new(
                format!("frozenset of names ({})", wit_name(ty)),
                &other,
            )),
        },
        Type::Option(option) => match value {
            Value::None => Ok(Val::Option(None)),
            other => to_val(other, &option.ty(), lend).map(|v| Val::Option(Some(Box::new(v)))),
        },
        Type::Own(resource) => lend.resource(value, resource),
        Type::Borrow(resource) => lend.borrow(value, resource),
        Type::Future(_) | Type::Stream(_) | Type::ErrorContext => Err(Mismatch::new(
            format!("{} (not supported as a parameter yet)", wit_name(ty)),
            &value,
        )),
    }
}

fn float(value: Value, ty: &Type) -> Result<f64, Mismatch> {
    match value {
        Value::Float(x) => Ok(x),
        Value::Int(i) => Ok(i as f64),
        other => Err(Mismatch::new(format!("float ({})", wit_name(ty)), &other)),
    }
}

/// Converts the items of a sequence, the i-th to `type_of(i)`.
fn items_to_vals(
    items: Vec<Value>,
    lend: &mut dyn Lend,
    type_of: impl Fn(usize) -> Type,
) -> Result<Vec<Val>, Mismatch> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            to_val(item, &type_of(i), lend).map_err(|e| e.within(format_args!("[{i}]")))
        })
        .collect()
}

/// Reads a variant-like value: a bare case name, or `(name, payload)`.
fn case(
    value: Value,
    cases: &[(String, Option<Type>)],
    ty: &Type,
    lend: &mut dyn Lend,
) -> Result<(String, Option<Box<Val>>), Mismatch> {
    let expected = || format!("a case name or (name, payload) ({})", wit_name(ty));
    let (name, payload) = match value {
        Value::Str(name) => (name, None),
        Value::Tuple(items)
            if matches!(items.len(), 1 | 2) && matches!(items[0], Value::Str(_)) =>
        {
            let mut items = items.into_iter();
            let Some(Value::Str(name)) = items.next() else {
                unreachable!("checked above")
            };
            (name, items.next())
        }
        other => return Err(Mismatch::new(expected(), &other)),
    };
    let Some((_, case_type)) = cases.iter().find(|(n, _)| *n == name) else {
        return Err(Mismatch::new(expected(), &Value::Str(name)));
    };
    let payload = match (case_type, payload) {
        (None, None) => None,
        (Some(t), Some(p)) => Some(Box::new(
            to_val(p, t, lend).map_err(|e| e.within(format_args!("[{name}]")))?,
        )),
        (None, Some(p)) => return Err(Mismatch::new(format!("no payload for case {name}"), &p)),
        (Some(t), None) => {
            return Err(Mismatch::new(
                format!("(\"{name}\", {})", wit_name(t)),
                &Value::Str(name),
            ));
        }
    };
    Ok((name, payload))
}

/// Why the host cannot take a value a guest returned.
#[derive(Debug, PartialEq, thiserror::Error)]
pub(crate) enum Unreturnable {
    /// It breaks the rules of its own type (only the dynamic `value` can:
    /// its node indices are checked here).
    #[error("the service returned a malformed value: {0}")]
    Malformed(String),
    /// It is well formed, but one of its objects cannot be lent: the
    /// message says why (the service lends as many objects as it may).
    #[error("{0}")]
    Refused(String),
}

/// Converts a [`Val`] of type `ty`, as a guest returned it, to a [`Value`].
pub(crate) fn from_val(val: Val, ty: &Type, keep: &mut dyn Keep) -> Result<Value, Unreturnable> {
    Ok(match (val, ty) {
        (Val::Bool(b), _) => Value::Bool(b),
        (Val::S8(i), _) => Value::Int(i.into()),
        (Val::U8(i), _) => Value::Int(i.into()),
        (Val::S16(i), _) => Value::Int(i.into()),
        (Val::U16(i), _) => Value::Int(i.into()),
        (Val::S32(i), _) => Value::Int(i.into()),
        (Val::U32(i), _) => Value::Int(i.into()),
        (Val::S64(i), _) => Value::Int(i.into()),
        (Val::U64(i), _) => Value::Int(i.into()),
        (Val::Float32(x), _) => Value::Float(x.into()),
        (Val::Float64(x), _) => Value::Float(x),
        (Val::Char(c), _) => Value::Str(c.into()),
        (Val::String(s), _) => Value::Str(s),
        (Val::List(items), Type::List(list)) if list.ty() == Type::U8 => Value::Bytes(
            items
                .into_iter()
                .map(|v| match v {
                    Val::U8(b) => Ok(b),
                    other => Err(Unreturnable::Malformed(format!("{other:?} in a list<u8>"))),
                })
                .collect::<Result<_, _>>()?,
        ),
        (Val::List(items), Type::List(list)) => {
            Value::Tuple(vals_to_values(items, |_| list.ty(), keep)?)
        }
        (Val::FixedLengthList(items), Type::FixedLengthList(list)) => {
            Value::Tuple(vals_to_values(items, |_| list.ty(), keep)?)
        }
        (Val::Map(pairs), Type::Map(map)) => Value::Tuple(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    Ok(Value::Tuple(vec![
                        from_val(k, &map.key(), keep)?,
                        from_val(v, &map.value(), keep)?,
                    ]))
                })
                .collect::<Result<_, Unreturnable>>()?,
        ),
        (Val::Tuple(items), Type::Tuple(tuple)) => {
            let types: Vec<Type> = tuple.types().collect();
            Value::Tuple(vals_to_values(items, |i| types[i].clone(), keep)?)
        }
        (val @ Val::Record(_), ty) if is_dynamic_value(ty) => dynamic::from_val(val, keep)?,
        (Val::Record(fields), Type::Record(record)) => {
            let types: Vec<Type> = record.fields().map(|f| f.ty).collect();
            Value::Tuple(vals_to_values(
                fields.into_iter().map(|(_, v)| v).collect(),
                |i| types[i].clone(),
                keep,
            )?)
        }
        (Val::Variant(name, payload), Type::Variant(variant)) => {
            let case_type = variant.cases().find(|c| c.name == name).and_then(|c| c.ty);
            case_value(name, payload, case_type, keep)?
        }
        (Val::Result(result), Type::Result(ty)) => match result {
            Ok(payload) => case_value("ok".into(), payload, ty.ok(), keep)?,
            Err(payload) => case_value("err".into(), payload, ty.err(), keep)?,
        },
        (Val::Enum(name), _) => Value::Str(name),
        (Val::Flags(names), _) => Value::FrozenSet(names.into_iter().map(Value::Str).collect()),
        (Val::Option(None), _) => Value::None,
        (Val::Option(Some(v)), Type::Option(option)) => from_val(*v, &option.ty(), keep)?,
        (Val::Resource(resource), Type::Own(ty)) => keep.resource(resource, ty)?,
        (val, ty) => {
            return Err(Unreturnable::Malformed(format!(
                "{val:?} cannot be sent (type {})",
                wit_name(ty)
            )));
        }
    })
}

fn vals_to_values(
    items: Vec<Val>,
    type_of: impl Fn(usize) -> Type,
    keep: &mut dyn Keep,
) -> Result<Vec<Value>, Unreturnable> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| from_val(v, &type_of(i), keep))
        .collect()
}

fn case_value(
    name: String,
    payload: Option<Box<Val>>,
    ty: Option<Type>,
    keep: &mut dyn Keep,
) -> Result<Value, Unreturnable> {
    Ok(match (payload, ty) {
        (Some(payload), Some(ty)) => {
            Value::Tuple(vec![Value::Str(name), from_val(*payload, &ty, keep)?])
        }
        _ => Value::Str(name),
    })
}

/// The shared dynamic `value`: a flat list of nodes, parents before children.
mod dynamic;
pub(crate) use dynamic::is_dynamic_value;
