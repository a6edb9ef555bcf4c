//! The shared dynamic `value` record: any value packed into one byte
//! string (the format is documented on the record in `wit/service.wit`),
//! with the peer's objects beside it as `netref` handles. A guest lifts a
//! byte string at once, where a list of parts costs it an object each.

use wasmtime::component::{Type, Val};

use super::{Keep, Lend, Mismatch, Unreturnable};
use crate::local::{Local, ServiceObject};
use crate::value::{MAX_DEPTH, Value};

/// The field names of the shared dynamic `value` record.
const DYNAMIC_VALUE_FIELDS: [&str; 2] = ["packed", "netrefs"];

/// The tag byte of each kind of item in a packed value.
mod tag {
    pub(super) const NONE: u8 = 0;
    pub(super) const FALSE: u8 = 1;
    pub(super) const TRUE: u8 = 2;
    pub(super) const INT: u8 = 3;
    pub(super) const BIG_INT: u8 = 4;
    pub(super) const FLOAT: u8 = 5;
    pub(super) const COMPLEX: u8 = 6;
    pub(super) const STR: u8 = 7;
    pub(super) const BYTES: u8 = 8;
    pub(super) const TUPLE: u8 = 9;
    pub(super) const FROZENSET: u8 = 10;
    pub(super) const NETREF: u8 = 11;
    pub(super) const OBJECT: u8 = 12;
    pub(super) const SLICE: u8 = 13;
    pub(super) const NOT_IMPLEMENTED: u8 = 14;
    pub(super) const ELLIPSIS: u8 = 15;
    pub(super) const CLASS: u8 = 16;
}

/// Whether `ty` is the shared dynamic `value` record (recognised by shape:
/// component types carry no names).
pub(crate) fn is_dynamic_value(ty: &Type) -> bool {
    let Type::Record(record) = ty else {
        return false;
    };
    record.fields().map(|f| f.name).eq(DYNAMIC_VALUE_FIELDS)
}

/// Packs `value` into the `value` record; the peer's objects become
/// `netref` handles in its `netrefs`.
pub(super) fn to_val(value: Value, lend: &mut dyn Lend) -> Result<Val, Mismatch> {
    let mut packing = Packing {
        packed: Vec::new(),
        netrefs: Vec::new(),
        lend,
    };
    packing.push(value)?;
    Ok(Val::Record(vec![
        (
            "packed".into(),
            Val::List(packing.packed.into_iter().map(Val::U8).collect()),
        ),
        ("netrefs".into(), Val::List(packing.netrefs)),
    ]))
}

/// A value being packed.
struct Packing<'a> {
    packed: Vec<u8>,
    netrefs: Vec<Val>,
    lend: &'a mut dyn Lend,
}

impl Packing<'_> {
    /// Appends `value`'s item, then its children's.
    fn push(&mut self, value: Value) -> Result<(), Mismatch> {
        match value {
            Value::None => self.packed.push(tag::NONE),
            Value::Bool(b) => self.packed.push(if b { tag::TRUE } else { tag::FALSE }),
            Value::Int(i) => match i64::try_from(i) {
                Ok(i) => {
                    self.packed.push(tag::INT);
                    self.packed.extend(i.to_le_bytes());
                }
                Err(_) => self.text(tag::BIG_INT, &i.to_string()),
            },
            Value::BigInt(s) => self.text(tag::BIG_INT, &s),
            Value::Float(x) => {
                self.packed.push(tag::FLOAT);
                self.packed.extend(x.to_le_bytes());
            }
            Value::Complex(re, im) => {
                self.packed.push(tag::COMPLEX);
                self.packed.extend(re.to_le_bytes());
                self.packed.extend(im.to_le_bytes());
            }
            Value::Str(s) => self.text(tag::STR, &s),
            Value::Bytes(b) => {
                self.tagged(tag::BYTES, b.len());
                self.packed.extend(b);
            }
            Value::Tuple(items) => self.items(tag::TUPLE, items)?,
            Value::FrozenSet(items) => self.items(tag::FROZENSET, items)?,
            Value::Remote(object) => {
                let index = self.netrefs.len();
                self.netrefs.push(self.lend.lend(object)?);
                self.tagged(tag::NETREF, index);
            }
            Value::Local(Local::Service(object)) => {
                let handle = self.lend.object(&object)?;
                self.packed.push(if object.is_class {
                    tag::CLASS
                } else {
                    tag::OBJECT
                });
                self.packed.extend(handle.to_le_bytes());
                self.length_of(&object.class);
            }
            Value::Slice(parts) => {
                self.packed.push(tag::SLICE);
                let [start, stop, step] = *parts;
                [start, stop, step]
                    .into_iter()
                    .try_for_each(|part| self.push(part))?;
            }
            Value::NotImplemented => self.packed.push(tag::NOT_IMPLEMENTED),
            Value::Ellipsis => self.packed.push(tag::ELLIPSIS),
            other @ (Value::Object(_) | Value::Local(_)) => {
                return Err(Mismatch::new(
                    "a value a service can receive (not one of its own netrefs)",
                    &other,
                ));
            }
        }
        Ok(())
    }

    fn items(&mut self, tag: u8, items: Vec<Value>) -> Result<(), Mismatch> {
        self.tagged(tag, items.len());
        items.into_iter().try_for_each(|item| self.push(item))
    }

    fn text(&mut self, tag: u8, text: &str) {
        self.packed.push(tag);
        self.length_of(text);
    }

    fn length_of(&mut self, text: &str) {
        self.u32(text.len());
        self.packed.extend(text.as_bytes());
    }

    /// `tag`, then `n` as a u32 (a length, a count or an index).
    fn tagged(&mut self, tag: u8, n: usize) {
        self.packed.push(tag);
        self.u32(n);
    }

    fn u32(&mut self, n: usize) {
        // Every length is of something that fits a frame, far below 4 GiB.
        let n = u32::try_from(n).expect("lengths fit a frame");
        self.packed.extend(n.to_le_bytes());
    }
}

/// Unpacks the value a guest handed over, checking every length against
/// what is left; its netrefs and the guest's objects go to `keep` (the
/// netrefs all of them, used or not).
pub(super) fn from_val(val: Val, keep: &mut dyn Keep) -> Result<Value, Unreturnable> {
    let Val::Record(fields) = val else {
        unreachable!("called for records only")
    };
    let (mut packed, mut netrefs) = (None, Vec::new());
    for (name, field) in fields {
        match (name.as_str(), field) {
            ("packed", Val::List(list)) => packed = Some(bytes(list)?),
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
    let packed =
        packed.ok_or_else(|| Unreturnable::Malformed("a value without its packed bytes".into()))?;
    let mut unpacking = Unpacking {
        packed: &packed,
        at: 0,
        netrefs: &netrefs,
        keep,
    };
    let value = unpacking.item(0)?;
    if unpacking.at != packed.len() {
        return Err(Unreturnable::Malformed(format!(
            "{} bytes follow the packed value",
            packed.len() - unpacking.at
        )));
    }
    Ok(value)
}

fn bytes(list: Vec<Val>) -> Result<Vec<u8>, Unreturnable> {
    list.into_iter()
        .map(|b| match b {
            Val::U8(b) => Ok(b),
            _ => Err(Unreturnable::Malformed(
                "packed bytes that are not u8".into(),
            )),
        })
        .collect()
}

/// A packed value being read.
struct Unpacking<'a> {
    packed: &'a [u8],
    /// The next byte to read.
    at: usize,
    netrefs: &'a [Value],
    keep: &'a mut dyn Keep,
}

impl Unpacking<'_> {
    /// The item at `at`, `depth` tuples deep.
    fn item(&mut self, depth: usize) -> Result<Value, Unreturnable> {
        if depth > MAX_DEPTH {
            return Err(Unreturnable::Malformed(format!(
                "items nest deeper than {MAX_DEPTH} levels"
            )));
        }
        let start = self.at;
        Ok(match self.take::<1>()?[0] {
            tag::NONE => Value::None,
            tag::FALSE => Value::Bool(false),
            tag::TRUE => Value::Bool(true),
            tag::INT => Value::Int(i64::from_le_bytes(self.take()?).into()),
            tag::BIG_INT => {
                let s = self.text()?;
                // Checked first: Rust's parse also takes a leading `+`.
                if !is_decimal(&s) {
                    return Err(Unreturnable::Malformed(format!(
                        "big-int {s:?} is not decimal"
                    )));
                }
                s.parse::<i128>().map_or(Value::BigInt(s), Value::Int)
            }
            tag::FLOAT => Value::Float(f64::from_le_bytes(self.take()?)),
            tag::COMPLEX => {
                let re = f64::from_le_bytes(self.take()?);
                Value::Complex(re, f64::from_le_bytes(self.take()?))
            }
            tag::STR => Value::Str(self.text()?),
            tag::BYTES => {
                let length = self.length()?;
                Value::Bytes(self.slice(length)?.to_vec())
            }
            tag::TUPLE => Value::Tuple(self.items(depth)?),
            tag::FROZENSET => Value::FrozenSet(self.items(depth)?),
            tag::NETREF => {
                let index = self.length()?;
                match self.netrefs.get(index) {
                    Some(netref) => netref.clone(),
                    None => {
                        return Err(Unreturnable::Malformed(format!(
                            "byte {start} names netref {index}, not one given"
                        )));
                    }
                }
            }
            tag @ (tag::OBJECT | tag::CLASS) => {
                let handle = u64::from_le_bytes(self.take()?);
                let class = self.text()?;
                self.keep.object(ServiceObject {
                    handle,
                    class,
                    is_class: tag == tag::CLASS,
                })?
            }
            tag::SLICE => {
                let start = self.item(depth + 1)?;
                let stop = self.item(depth + 1)?;
                Value::Slice(Box::new([start, stop, self.item(depth + 1)?]))
            }
            tag::NOT_IMPLEMENTED => Value::NotImplemented,
            tag::ELLIPSIS => Value::Ellipsis,
            other => {
                return Err(Unreturnable::Malformed(format!(
                    "byte {start} has unknown tag {other}"
                )));
            }
        })
    }

    /// A tuple's or frozenset's items. Each is at least a byte, so a count
    /// past what is left is refused before anything is allocated.
    fn items(&mut self, depth: usize) -> Result<Vec<Value>, Unreturnable> {
        let count = self.length()?;
        if count > self.packed.len() - self.at {
            return Err(Unreturnable::Malformed(format!(
                "{count} items cannot fit the {} bytes left",
                self.packed.len() - self.at
            )));
        }
        (0..count).map(|_| self.item(depth + 1)).collect()
    }

    fn text(&mut self) -> Result<String, Unreturnable> {
        let length = self.length()?;
        let start = self.at;
        String::from_utf8(self.slice(length)?.to_vec())
            .map_err(|_| Unreturnable::Malformed(format!("the text at byte {start} is not UTF-8")))
    }

    fn length(&mut self) -> Result<usize, Unreturnable> {
        Ok(u32::from_le_bytes(self.take()?) as usize)
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Unreturnable> {
        Ok(self.slice(N)?.try_into().expect("N bytes"))
    }

    fn slice(&mut self, length: usize) -> Result<&[u8], Unreturnable> {
        let packed = self.packed;
        let end = self
            .at
            .checked_add(length)
            .filter(|&end| end <= packed.len())
            .ok_or_else(|| {
                Unreturnable::Malformed(format!(
                    "{length} bytes at byte {} run past the end ({})",
                    self.at,
                    packed.len()
                ))
            })?;
        let slice = &packed[self.at..end];
        self.at = end;
        Ok(slice)
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

    /// Lends the peer's objects as their index in `lent`, and the guest's
    /// objects as their handle plus 100.
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

        fn object(&mut self, object: &ServiceObject) -> Result<u64, Mismatch> {
            Ok(object.handle + 100)
        }
    }

    /// Takes no netrefs (the values unpacked here hold none); a guest's
    /// object becomes a service object of the same handle.
    struct NoNetrefs;

    impl Keep for NoNetrefs {
        fn resource(&mut self, _: ResourceAny, _: &ResourceType) -> Result<Value, Unreturnable> {
            Err(Unreturnable::Malformed("no resource".into()))
        }

        fn netref(&mut self, _: ResourceAny) -> Result<Value, Unreturnable> {
            Err(Unreturnable::Malformed("no netref".into()))
        }

        fn object(&mut self, object: ServiceObject) -> Result<Value, Unreturnable> {
            Ok(Value::Local(Local::Service(object)))
        }
    }

    fn record(packed: &[u8], netrefs: Vec<Val>) -> Val {
        Val::Record(vec![
            (
                "packed".into(),
                Val::List(packed.iter().copied().map(Val::U8).collect()),
            ),
            ("netrefs".into(), Val::List(netrefs)),
        ])
    }

    fn packed(value: Value, lend: &mut Indexed) -> (Vec<u8>, Vec<Val>) {
        let Val::Record(fields) = to_val(value, lend).unwrap() else {
            panic!("not a record")
        };
        let [(_, Val::List(packed)), (_, Val::List(netrefs))] = <[_; 2]>::try_from(fields).unwrap()
        else {
            panic!("not the value record")
        };
        (bytes(packed).unwrap(), netrefs)
    }

    #[test]
    fn values_pack_as_the_wit_documents() {
        let (bytes, _) = packed(
            Value::Tuple(vec![Value::Int(4), Value::Int(7)]),
            &mut Indexed::default(),
        );
        let expected = [
            [9, 2, 0, 0, 0].as_slice(),
            &[3, 4, 0, 0, 0, 0, 0, 0, 0],
            &[3, 7, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(bytes, expected);
        let (bytes, _) = packed(Value::Str("ab".into()), &mut Indexed::default());
        assert_eq!(bytes, [7, 2, 0, 0, 0, b'a', b'b']);
    }

    #[test]
    fn the_guests_objects_travel_as_their_handles() {
        let object = |handle| {
            Value::Local(Local::Service(ServiceObject {
                handle,
                class: "builtins.list".into(),
                is_class: false,
            }))
        };
        let value = Value::Tuple(vec![Value::Int(1), object(7)]);
        let (bytes, netrefs) = packed(value, &mut Indexed::default());
        let tail = [
            [12].as_slice(),
            &107u64.to_le_bytes(),
            &[13, 0, 0, 0],
            b"builtins.list",
        ]
        .concat();
        assert!(bytes.ends_with(&tail), "{bytes:?}");
        let back = from_val(record(&bytes, netrefs), &mut NoNetrefs).unwrap();
        assert_eq!(back, Value::Tuple(vec![Value::Int(1), object(107)]));
    }

    #[test]
    fn nested_values_pack_and_come_back_unchanged() {
        let value = Value::Tuple(vec![
            Value::None,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(-7),
            Value::Int(i128::from(i64::MAX) + 1),
            Value::BigInt("123456789012345678901234567890123456789012".into()),
            Value::Float(1.5),
            Value::Complex(1.0, -2.0),
            Value::Str("é".into()),
            Value::Bytes(vec![0, 255]),
            Value::FrozenSet(vec![Value::Tuple(vec![]), Value::Str("x".into())]),
            Value::Slice(Box::new([Value::None, Value::Int(2), Value::Int(-1)])),
            Value::NotImplemented,
            Value::Ellipsis,
        ]);
        let (bytes, netrefs) = packed(value.clone(), &mut Indexed::default());
        assert_eq!(
            from_val(record(&bytes, netrefs), &mut NoNetrefs).unwrap(),
            value
        );
    }

    #[test]
    fn the_peers_objects_become_netrefs_in_order() {
        let (a, b) = (
            PeerObject::never_released(1, "builtins.list"),
            PeerObject::never_released(2, "builtins.function"),
        );
        let value = Value::Tuple(vec![Value::Remote(a.clone()), Value::Remote(b.clone())]);
        let mut lend = Indexed::default();
        let (bytes, netrefs) = packed(value, &mut lend);
        assert_eq!(lend.lent, [a, b]);
        assert_eq!(netrefs, [Val::U32(0), Val::U32(1)]);
        assert_eq!(bytes, [9, 2, 0, 0, 0, 11, 0, 0, 0, 0, 11, 1, 0, 0, 0]);
    }

    #[test]
    fn malformed_packing_is_refused_with_a_reason() {
        let cases: [(&[u8], &str); 10] = [
            (&[], "run past the end"),
            (&[3, 1, 2], "run past the end"),
            (&[9, 2, 0, 0, 0, 3, 1], "run past the end"),
            (&[9, 200, 0, 0, 0, 0], "cannot fit"),
            (&[0, 0], "1 bytes follow"),
            (&[42], "unknown tag 42"),
            (&[11, 0, 0, 0, 0], "not one given"),
            (&[4, 3, 0, 0, 0, b'1', b'2', b'a'], "not decimal"),
            (&[4, 2, 0, 0, 0, b'+', b'5'], "not decimal"),
            (&[7, 1, 0, 0, 0, 0xff], "not UTF-8"),
        ];
        for (bytes, reason) in cases {
            let Unreturnable::Malformed(message) =
                from_val(record(bytes, vec![]), &mut NoNetrefs).unwrap_err()
            else {
                panic!("refused, not malformed")
            };
            assert!(message.contains(reason), "{message} (wanted: {reason})");
        }
        let deep: Vec<u8> = (0..=MAX_DEPTH + 1)
            .flat_map(|_| [9, 1, 0, 0, 0])
            .chain([0])
            .collect();
        let Unreturnable::Malformed(message) =
            from_val(record(&deep, vec![]), &mut NoNetrefs).unwrap_err()
        else {
            panic!("refused, not malformed")
        };
        assert!(message.contains("nest deeper"), "{message}");
    }
}
