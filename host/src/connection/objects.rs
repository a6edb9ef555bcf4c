//! The objects this side has lent to the peer: what each id names, and how
//! many references the peer holds, with a bound and typed errors.

use std::collections::HashMap;
use std::convert::Infallible;

use crate::exception::Exception;
use crate::local::{Local, ServiceObject};
use crate::protocol::{Holder, ObjectId, ObjectRef, ROOT};
use crate::value::Value;

/// The class of a lent method: a client knows it without asking (RPyC's
/// clients pre-build `builtins.method` netrefs, so no INSPECT is spent).
pub(crate) const METHOD_CLASS: &str = "builtins.method";

/// An object this side lends.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lent {
    /// The root: the service itself. Always present, never released.
    Root,
    /// A member of the root called like a method (an exposed method or
    /// class), by its Python name.
    Method(String),
    /// A method of the lent service object `of`, which it keeps lent.
    BoundMethod {
        /// The object's id in this table.
        of: ObjectId,
        /// The method's Python name.
        name: String,
    },
    /// A native function or an object of the service.
    Local(Local),
}

/// The table of lent objects.
pub(crate) struct Objects {
    entries: HashMap<ObjectId, (Lent, u64)>,
    next: ObjectId,
    limit: usize,
}

impl Objects {
    /// A table holding the root and room for `limit` more objects.
    pub(crate) fn new(limit: usize) -> Self {
        Objects {
            entries: HashMap::new(),
            next: ROOT + 1,
            limit,
        }
    }

    /// Lends `object`: a new id, held once by the peer.
    pub(crate) fn lend(&mut self, object: Lent) -> Result<ObjectId, Exception> {
        if object == Lent::Root {
            return Ok(ROOT);
        }
        if self.entries.len() >= self.limit {
            return Err(Exception::memory_error(format!(
                "the peer holds as many objects as it may (the limit is {})",
                self.limit
            )));
        }
        let id = self.next;
        self.next += 1;
        self.entries.insert(id, (object, 1));
        Ok(id)
    }

    /// Counts one more reference to the lent object `id`.
    pub(crate) fn add_ref(&mut self, id: ObjectId) -> Result<(), Exception> {
        if id != ROOT {
            self.entries.get_mut(&id).ok_or_else(|| unknown(id))?.1 += 1;
        }
        Ok(())
    }

    /// What `id` names.
    pub(crate) fn get(&self, id: ObjectId) -> Result<&Lent, Exception> {
        if id == ROOT {
            return Ok(&Lent::Root);
        }
        self.entries
            .get(&id)
            .map(|(object, _)| object)
            .ok_or_else(|| unknown(id))
    }

    /// The peer drops `count` references; the object goes when none are
    /// left. Returns the service's objects that are no longer lent at all.
    pub(crate) fn release(
        &mut self,
        id: ObjectId,
        count: u64,
    ) -> Result<Vec<ServiceObject>, Exception> {
        let mut freed = Vec::new();
        if id == ROOT {
            return Ok(freed);
        }
        let (_, refs) = self.entries.get_mut(&id).ok_or_else(|| unknown(id))?;
        *refs = refs.saturating_sub(count);
        if *refs == 0 {
            self.forget(id, &mut freed);
        }
        Ok(freed)
    }

    fn forget(&mut self, id: ObjectId, freed: &mut Vec<ServiceObject>) {
        match self.entries.remove(&id) {
            Some((Lent::BoundMethod { of, .. }, _)) => {
                if let Some((_, refs)) = self.entries.get_mut(&of) {
                    *refs -= 1;
                    if *refs == 0 {
                        self.forget(of, freed);
                    }
                }
            }
            Some((Lent::Local(Local::Service(object)), _)) => freed.push(object),
            _ => {}
        }
    }

    /// Forgets every lent object (the connection has ended); returns the
    /// service's objects among them.
    pub(crate) fn clear(&mut self) -> Vec<ServiceObject> {
        self.entries
            .drain()
            .filter_map(|(_, (object, _))| match object {
                Lent::Local(Local::Service(object)) => Some(object),
                _ => None,
            })
            .collect()
    }

    /// How many objects are lent (the root aside).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Lends every [`Value::Local`] in `value`, which then names it by id.
    /// On failure nothing stays lent.
    pub(crate) fn lend_locals(&mut self, value: &mut Value) -> Result<(), Exception> {
        let mut lent = Vec::new();
        let result = self.lend_within(value, &mut lent);
        if result.is_err() {
            for id in lent {
                self.entries.remove(&id);
            }
        }
        result
    }

    fn lend_within(
        &mut self,
        value: &mut Value,
        lent: &mut Vec<ObjectId>,
    ) -> Result<(), Exception> {
        value.try_for_each_item(&mut |item| {
            let Value::Local(local) = item else {
                return Ok(());
            };
            let (class, is_class) = (local.class().to_owned(), local.is_class());
            let id = self.lend(Lent::Local(local.clone()))?;
            lent.push(id);
            *item = Value::Object(ObjectRef {
                holder: Holder::Sender,
                id,
                class,
                is_class,
            });
            Ok(())
        })
    }

    /// Turns the peer's references to this side's native functions and
    /// service objects in `value` back into the objects themselves.
    pub(crate) fn resolve_locals(&self, value: &mut Value) {
        let _ = value.try_for_each_item(&mut |item| {
            if let Value::Object(object) = item
                && object.holder == Holder::Receiver
                && let Ok(Lent::Local(local)) = self.get(object.id)
            {
                *item = Value::Local(local.clone());
            }
            Ok::<(), Infallible>(())
        });
    }
}

fn unknown(id: ObjectId) -> Exception {
    Exception::key_error(format!("no object {id} is lent on this connection"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(handle: u64) -> Lent {
        Lent::Local(Local::Service(ServiceObject {
            handle,
            class: "MyClass".into(),
            is_class: false,
        }))
    }

    #[test]
    fn objects_live_until_released_and_the_table_is_bounded() {
        let mut objects = Objects::new(2);
        let add = objects.lend(Lent::Method("add".into())).unwrap();
        let sub = objects.lend(Lent::Method("sub".into())).unwrap();
        assert_ne!(add, sub);
        assert!(
            objects
                .lend(Lent::Method("mul".into()))
                .unwrap_err()
                .is("MemoryError")
        );
        assert_eq!(objects.lend(Lent::Root), Ok(ROOT), "the root needs no room");
        assert_eq!(objects.get(add), Ok(&Lent::Method("add".into())));
        objects.release(add, 1).unwrap();
        assert!(objects.get(add).unwrap_err().is("KeyError"));
        assert!(objects.release(add, 1).unwrap_err().is("KeyError"));
        objects.release(ROOT, 5).unwrap();
        assert_eq!(objects.get(ROOT), Ok(&Lent::Root));
        objects.release(sub, 1).unwrap();
        assert!(
            objects.lend(Lent::Method("mul".into())).is_ok(),
            "released room is reused"
        );
    }

    #[test]
    fn a_bound_method_keeps_its_object_lent() {
        let mut objects = Objects::new(10);
        let object = objects.lend(instance(7)).unwrap();
        objects.add_ref(object).unwrap();
        let foo = objects
            .lend(Lent::BoundMethod {
                of: object,
                name: "foo".into(),
            })
            .unwrap();
        assert_eq!(objects.release(object, 1), Ok(vec![]));
        let freed = objects.release(foo, 1).unwrap();
        assert_eq!(
            freed.len(),
            1,
            "the method held the object's last reference"
        );
        assert_eq!(freed[0].handle, 7);
        assert_eq!(objects.len(), 0);
    }

    #[test]
    fn locals_are_lent_and_resolved_back() {
        let mut objects = Objects::new(1);
        let local = Value::Local(Local::Service(ServiceObject {
            handle: 3,
            class: "MyClass".into(),
            is_class: false,
        }));
        let mut sent = Value::Tuple(vec![Value::Int(1), local.clone()]);
        objects.lend_locals(&mut sent).unwrap();
        let Value::Tuple(items) = &sent else {
            unreachable!()
        };
        let Value::Object(object) = &items[1] else {
            panic!("not lent: {sent}")
        };
        let mut back = Value::Object(ObjectRef {
            holder: Holder::Receiver,
            ..object.clone()
        });
        objects.resolve_locals(&mut back);
        assert_eq!(back, local);
        let mut two = Value::Tuple(vec![local.clone(), local]);
        assert!(objects.lend_locals(&mut two).unwrap_err().is("MemoryError"));
        assert_eq!(objects.len(), 1, "a failed lend keeps nothing");
        assert!(two.any(|v| matches!(v, Value::Local(_))));
    }
}
