//! The objects this side has lent to the peer: what each id names, and how
//! many references the peer holds, with a bound and typed errors.

use std::collections::HashMap;

use crate::exception::Exception;
use crate::protocol::{ObjectId, ROOT};

/// An object this side lends: its service, or a method of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Lent {
    /// The root: the service itself. Always present, never released.
    Root,
    /// A method of the service, by its Python name.
    Method(String),
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
            return Err(Exception::new(
                "MemoryError",
                format!(
                    "the peer holds as many objects as it may (the limit is {})",
                    self.limit
                ),
            ));
        }
        let id = self.next;
        self.next += 1;
        self.entries.insert(id, (object, 1));
        Ok(id)
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

    /// The peer drops `count` references; the object goes when none are left.
    pub(crate) fn release(&mut self, id: ObjectId, count: u64) -> Result<(), Exception> {
        if id == ROOT {
            return Ok(());
        }
        let (_, refs) = self.entries.get_mut(&id).ok_or_else(|| unknown(id))?;
        *refs = refs.saturating_sub(count);
        if *refs == 0 {
            self.entries.remove(&id);
        }
        Ok(())
    }
}

fn unknown(id: ObjectId) -> Exception {
    Exception::new(
        "KeyError",
        format!("no object {id} is lent on this connection"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
