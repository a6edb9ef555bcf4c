//! RPyC's boxing: every value crosses as `(label, value)`. Brine-able values
//! go by value; tuples holding references are boxed item by item; objects go
//! by reference, named by id_packs `(class, class_id, instance_id)`.
//!
//! This side's objects get id_packs built from their id (`instance_id` is
//! the id plus one: RPyC reserves 0 for classes). The peer's id_packs are
//! kept in [`PeerObjects`] and stand for compact ids, so the rest of the host
//! never sees them.

use std::collections::HashMap;

use super::brine;
use crate::protocol::{FrameError, Holder, ObjectId, ObjectRef};
use crate::value::Value;

const LABEL_VALUE: i128 = 1;
const LABEL_TUPLE: i128 = 2;
const LABEL_LOCAL_REF: i128 = 3;
const LABEL_REMOTE_REF: i128 = 4;

/// How an object is named on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct IdPack {
    class: String,
    class_id: i128,
    instance_id: i128,
}

impl IdPack {
    fn to_value(&self) -> Value {
        Value::Tuple(vec![
            Value::Str(self.class.clone()),
            Value::Int(self.class_id),
            Value::Int(self.instance_id),
        ])
    }

    fn from_value(value: Value) -> Result<Self, FrameError> {
        match value {
            Value::Tuple(parts) => match <[Value; 3]>::try_from(parts) {
                Ok(
                    [
                        Value::Str(class),
                        Value::Int(class_id),
                        Value::Int(instance_id),
                    ],
                ) => Ok(IdPack {
                    class,
                    class_id,
                    instance_id,
                }),
                Ok(parts) => Err(malformed(format!(
                    "an id_pack {}",
                    Value::Tuple(parts.into())
                ))),
                Err(parts) => Err(malformed(format!("an id_pack of {} parts", parts.len()))),
            },
            other => Err(malformed(format!("an id_pack {other}"))),
        }
    }

    /// The id_pack of this side's object `object`: an instance's names its
    /// class and its id plus one; a class's (RPyC's instance id 0) carries
    /// its id in the class id, below zero, where class names' numbers never
    /// are.
    fn of_ours(object: &ObjectRef) -> Self {
        match object.is_class {
            true => IdPack {
                class: object.class.clone(),
                class_id: -i128::from(object.id) - 1,
                instance_id: 0,
            },
            false => IdPack {
                class: object.class.clone(),
                class_id: class_id(&object.class),
                instance_id: i128::from(object.id) + 1,
            },
        }
    }

    /// The id of this side's object this id_pack names (see `of_ours`).
    fn our_id(&self) -> Result<ObjectId, FrameError> {
        let id = match self.instance_id {
            0 => self.class_id.checked_neg().and_then(|id| id.checked_sub(1)),
            instance => instance.checked_sub(1),
        };
        id.and_then(|id| ObjectId::try_from(id).ok())
            .ok_or_else(|| malformed(format!("reference to object {self:?}")))
    }
}

/// A stable, non-zero number for a class name (FNV-1a), standing in for
/// CPython's `id(type(obj))`.
fn class_id(class: &str) -> i128 {
    let hash = class.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i128::from(hash >> 1 | 1)
}

fn malformed(what: String) -> FrameError {
    FrameError::Malformed(format!("unexpected {what}"))
}

/// The peer's objects this side has references to: id_pack <-> compact id.
/// Shared by the codec's two halves: the reader adds, the writer looks up
/// and forgets (when it sends the DEL that releases one).
pub struct PeerObjects {
    by_pack: HashMap<IdPack, ObjectId>,
    /// Each object's id_pack, and how many times the peer lent it that no
    /// DEL has given back yet: a lend that crosses a DEL keeps the id.
    by_id: HashMap<ObjectId, (IdPack, u64)>,
    next: ObjectId,
    limit: usize,
}

impl PeerObjects {
    /// An empty table with room for `limit` of the peer's objects.
    pub fn new(limit: usize) -> Self {
        PeerObjects {
            by_pack: HashMap::new(),
            by_id: HashMap::new(),
            next: 0,
            limit,
        }
    }

    fn intern(&mut self, pack: IdPack) -> Result<ObjectRef, FrameError> {
        let class = pack.class.clone();
        let is_class = pack.instance_id == 0;
        if let Some(&id) = self.by_pack.get(&pack) {
            self.by_id.get_mut(&id).expect("both maps agree").1 += 1;
            return Ok(ObjectRef {
                holder: Holder::Sender,
                id,
                class,
                is_class,
            });
        }
        if self.by_pack.len() >= self.limit {
            return Err(FrameError::TooManyObjects { limit: self.limit });
        }
        let id = self.next;
        self.next += 1;
        self.by_pack.insert(pack.clone(), id);
        self.by_id.insert(id, (pack, 1));
        Ok(ObjectRef {
            holder: Holder::Sender,
            id,
            class,
            is_class,
        })
    }

    fn pack(&self, id: ObjectId) -> Result<&IdPack, FrameError> {
        self.by_id
            .get(&id)
            .map(|(pack, _)| pack)
            .ok_or_else(|| FrameError::Malformed(format!("no object {id} of the peer is held")))
    }

    /// The id_pack of the peer's object `id`, as a value (INSPECT sends it so).
    pub fn id_pack(&self, id: ObjectId) -> Result<Value, FrameError> {
        self.pack(id).map(IdPack::to_value)
    }

    /// How many times the peer lent its object `id` and this side has not
    /// released it.
    #[cfg(test)]
    pub fn times_lent(&self, id: ObjectId) -> Result<u64, FrameError> {
        self.pack(id)?;
        Ok(self.by_id[&id].1)
    }

    /// This side gives back `count` of the times the peer lent `id` (the
    /// count of its DEL); the object is forgotten when none are left.
    pub fn release(&mut self, id: ObjectId, count: u64) {
        let Some((pack, lent)) = self.by_id.get_mut(&id) else {
            return;
        };
        *lent = lent.saturating_sub(count);
        if *lent == 0 {
            self.by_pack.remove(pack);
            self.by_id.remove(&id);
        }
    }
}

/// Writes the brine of `value` boxed for sending, straight from the value.
pub fn write_boxed(value: &Value, peer: &PeerObjects, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let put = |value: &Value, out: &mut Vec<u8>| {
        brine::encode(value, out).map_err(|e| FrameError::Malformed(e.to_string()))
    };
    brine::tuple_header(2, out);
    if !value.any(|item| matches!(item, Value::Object(_))) {
        put(&Value::Int(LABEL_VALUE), out)?;
        return put(value, out);
    }
    match value {
        Value::Tuple(items) => {
            put(&Value::Int(LABEL_TUPLE), out)?;
            brine::tuple_header(items.len(), out);
            items
                .iter()
                .try_for_each(|item| write_boxed(item, peer, out))
        }
        Value::Object(object) => {
            let (label, pack) = match object.holder {
                Holder::Sender => (LABEL_REMOTE_REF, IdPack::of_ours(object)),
                Holder::Receiver => (LABEL_LOCAL_REF, peer.pack(object.id)?.clone()),
            };
            put(&Value::Int(label), out)?;
            put(&pack.to_value(), out)
        }
        other => Err(FrameError::Malformed(format!(
            "a {} holding netrefs cannot be sent",
            other.type_name()
        ))),
    }
}

/// Unboxes a received `(label, value)`.
pub fn unbox(boxed: Value, peer: &mut PeerObjects) -> Result<Value, FrameError> {
    let Value::Tuple(pair) = boxed else {
        return Err(malformed(format!("boxed value {boxed}")));
    };
    let [label, value] =
        <[Value; 2]>::try_from(pair).map_err(|p| malformed(format!("box of {} parts", p.len())))?;
    match (label, value) {
        (Value::Int(LABEL_VALUE), value) => Ok(value),
        (Value::Int(LABEL_TUPLE), Value::Tuple(items)) => Ok(Value::Tuple(
            items
                .into_iter()
                .map(|item| unbox(item, peer))
                .collect::<Result<_, _>>()?,
        )),
        (Value::Int(LABEL_LOCAL_REF), pack) => Ok(Value::Object(our_object(pack)?)),
        (Value::Int(LABEL_REMOTE_REF), pack) => {
            Ok(Value::Object(peer.intern(IdPack::from_value(pack)?)?))
        }
        (label, value) => Err(malformed(format!("box ({label}, {value})"))),
    }
}

/// The id of this side's object named by an id_pack sent by value (INSPECT).
pub fn our_id(pack: Value) -> Result<ObjectId, FrameError> {
    IdPack::from_value(pack)?.our_id()
}

/// This side's object named by an id_pack sent by value (INSTANCECHECK),
/// with the class the pack says it has.
pub fn our_object(pack: Value) -> Result<ObjectRef, FrameError> {
    let pack = IdPack::from_value(pack)?;
    Ok(ObjectRef {
        holder: Holder::Receiver,
        id: pack.our_id()?,
        is_class: pack.instance_id == 0,
        class: pack.class,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(i: i128) -> Value {
        Value::Int(i)
    }

    /// What `write_boxed` writes, read back.
    fn box_value(value: Value, peer: &PeerObjects) -> Result<Value, FrameError> {
        let mut out = Vec::new();
        write_boxed(&value, peer, &mut out)?;
        Ok(brine::decode(&out).expect("valid brine"))
    }

    #[test]
    fn a_peer_lending_past_the_bound_is_a_typed_error() {
        let mut peer = PeerObjects::new(2);
        let lend = |peer: &mut PeerObjects, instance: i128| {
            let pack = Value::Tuple(vec![
                Value::Str("builtins.function".into()),
                int(7),
                int(instance),
            ]);
            unbox(Value::Tuple(vec![int(4), pack]), peer)
        };
        assert!(lend(&mut peer, 1).is_ok());
        assert!(lend(&mut peer, 2).is_ok());
        assert!(lend(&mut peer, 1).is_ok(), "lent again: no new entry");
        assert_eq!(
            lend(&mut peer, 3),
            Err(FrameError::TooManyObjects { limit: 2 })
        );
    }

    #[test]
    fn values_box_by_value_and_references_by_id_pack() {
        let mut peer = PeerObjects::new(10);
        let plain = Value::Tuple(vec![int(4), int(7)]);
        assert_eq!(
            box_value(plain.clone(), &peer),
            Ok(Value::Tuple(vec![int(1), plain.clone()]))
        );
        assert_eq!(
            unbox(Value::Tuple(vec![int(1), plain.clone()]), &mut peer),
            Ok(plain)
        );

        // The peer lends a function; it comes back to it as LOCAL_REF with the same id_pack.
        let pack = Value::Tuple(vec![
            Value::Str("builtins.function".into()),
            int(93865899159040),
            int(140611759028752),
        ]);
        let lent = unbox(Value::Tuple(vec![int(4), pack.clone()]), &mut peer).unwrap();
        let Value::Object(function) = &lent else {
            panic!("{lent}")
        };
        assert_eq!(
            (function.holder, function.class.as_str()),
            (Holder::Sender, "builtins.function")
        );
        let again = unbox(Value::Tuple(vec![int(4), pack.clone()]), &mut peer).unwrap();
        assert_eq!(again, lent, "the same id_pack is the same object");
        let back = Value::Object(ObjectRef {
            holder: Holder::Receiver,
            ..function.clone()
        });
        assert_eq!(
            box_value(back, &peer),
            Ok(Value::Tuple(vec![int(3), pack.clone()]))
        );

        // This side lends its object 41: REMOTE_REF with instance_id 42; it returns as LOCAL_REF.
        let ours = Value::Object(ObjectRef {
            holder: Holder::Sender,
            id: 41,
            class: "builtins.method".into(),
            is_class: false,
        });
        let Value::Tuple(boxed) = box_value(Value::Tuple(vec![ours, int(1)]), &peer).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            boxed[0],
            int(2),
            "a tuple holding a reference is boxed item by item"
        );
        let Value::Tuple(items) = &boxed[1] else {
            panic!()
        };
        let Value::Tuple(remote) = &items[0] else {
            panic!()
        };
        assert_eq!(remote[0], int(4));
        let Value::Tuple(our_pack) = &remote[1] else {
            panic!()
        };
        assert_eq!(our_pack[2], int(42));
        let returned = unbox(Value::Tuple(vec![int(3), remote[1].clone()]), &mut peer).unwrap();
        assert_eq!(
            returned,
            Value::Object(ObjectRef {
                holder: Holder::Receiver,
                id: 41,
                class: "builtins.method".into(),
                is_class: false,
            })
        );
        assert_eq!(our_id(remote[1].clone()), Ok(41));

        // This side's class 7: named by its own name, its id in the class
        // id, and instance id 0, as RPyC names a class.
        let class = ObjectRef {
            holder: Holder::Sender,
            id: 7,
            class: "mymodule.Point".into(),
            is_class: true,
        };
        let Value::Tuple(boxed) = box_value(Value::Object(class.clone()), &peer).unwrap() else {
            panic!()
        };
        let Value::Tuple(pack) = &boxed[1] else {
            panic!()
        };
        assert_eq!(pack[0], Value::Str("mymodule.Point".into()));
        assert_eq!(pack[2], int(0));
        let returned = unbox(Value::Tuple(vec![int(3), boxed[1].clone()]), &mut peer).unwrap();
        assert_eq!(
            returned,
            Value::Object(ObjectRef {
                holder: Holder::Receiver,
                ..class
            })
        );

        assert_eq!(peer.times_lent(function.id), Ok(2), "lent twice");
        peer.release(function.id, 1);
        assert_eq!(
            peer.times_lent(function.id),
            Ok(1),
            "a receipt the release did not see stays held"
        );
        peer.release(function.id, 1);
        assert!(peer.id_pack(function.id).is_err());
    }

    #[test]
    fn malformed_boxes_and_too_many_references_are_refused() {
        let mut peer = PeerObjects::new(1);
        for bad in [
            int(1),
            Value::Tuple(vec![int(9), int(1)]),
            Value::Tuple(vec![int(3), int(1)]),
        ] {
            assert!(unbox(bad, &mut peer).is_err());
        }
        let pack = |i| {
            Value::Tuple(vec![
                int(4),
                Value::Tuple(vec![Value::Str("x".into()), int(1), int(i)]),
            ])
        };
        assert!(unbox(pack(1), &mut peer).is_ok());
        assert!(
            unbox(pack(1), &mut peer).is_ok(),
            "the same object again takes no room"
        );
        assert!(unbox(pack(2), &mut peer).is_err());
        let local = |class_id, instance_id| {
            Value::Tuple(vec![
                int(3),
                Value::Tuple(vec![
                    Value::Str("x".into()),
                    int(class_id),
                    int(instance_id),
                ]),
            ])
        };
        assert!(
            unbox(local(1, 0), &mut peer).is_err(),
            "our classes' ids are below zero"
        );
        for (class_id, instance_id) in [(i128::MIN, 0), (1, i128::MIN), (-1 - (1 << 64), 0)] {
            assert!(unbox(local(class_id, instance_id), &mut peer).is_err());
        }
    }
}
