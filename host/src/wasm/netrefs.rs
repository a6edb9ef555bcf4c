//! The peer's objects a guest holds as `netref` handles: which object each
//! handle names, and how many handles each object has. The peer is told to
//! release an object when the guest drops the last handle to it.

use std::collections::HashMap;

use wasmtime::StoreContextMut;
use wasmtime::component::{Resource, ResourceAny, ResourceType, Val};

use super::classes::{Class, GuestObjects};
use super::convert::{Lend, Mismatch};
use super::host::HostState;
use crate::exception::Exception;
use crate::local::Local;
use crate::protocol::{Holder, ObjectId, ObjectRef};
use crate::value::Value;

/// How many netrefs one guest may hold at once. A guest that keeps every
/// callback it is given hits this instead of growing the host's tables.
pub const MAX_GUEST_NETREFS: usize = 10_000;

/// The netref handles of one guest instance.
#[derive(Default)]
pub(crate) struct GuestNetrefs {
    /// Each handle's representation (what the guest's handle carries) and the
    /// object it names.
    by_rep: HashMap<u32, ObjectRef>,
    /// How many live handles name each object.
    handles: HashMap<ObjectId, usize>,
    next_rep: u32,
}

impl GuestNetrefs {
    /// A new handle to `object`; `None` when the guest holds as many as it may.
    pub(crate) fn lend(&mut self, object: ObjectRef) -> Option<u32> {
        if self.by_rep.len() >= MAX_GUEST_NETREFS {
            return None;
        }
        while self.by_rep.contains_key(&self.next_rep) {
            self.next_rep = self.next_rep.wrapping_add(1);
        }
        let rep = self.next_rep;
        self.next_rep = self.next_rep.wrapping_add(1);
        *self.handles.entry(object.id).or_default() += 1;
        self.by_rep.insert(rep, object);
        Some(rep)
    }

    /// The object a handle names.
    pub(crate) fn get(&self, rep: u32) -> Option<&ObjectRef> {
        self.by_rep.get(&rep)
    }

    /// Forgets a dropped handle; returns the object's id when no handle to
    /// it is left (the object may then be released).
    pub(crate) fn drop_handle(&mut self, rep: u32) -> Option<ObjectId> {
        let object = self.by_rep.remove(&rep)?;
        let count = self.handles.get_mut(&object.id)?;
        *count -= 1;
        if *count > 0 {
            return None;
        }
        self.handles.remove(&object.id);
        Some(object.id)
    }

    /// The objects the guest holds handles to.
    pub(crate) fn objects(&self) -> impl Iterator<Item = ObjectId> + '_ {
        self.handles.keys().copied()
    }

    /// Whether the guest holds a handle to `id`.
    pub(crate) fn holds(&self, id: ObjectId) -> bool {
        self.handles.contains_key(&id)
    }
}

/// Lends the peer's objects to the guest of a store, as owned `netref`
/// handles. Remembers what it lent, so a conversion that fails half-way can
/// take the handles back.
pub(crate) struct StoreLend<'a, 'b> {
    store: &'a mut StoreContextMut<'b, HostState>,
    /// The `netref` type as the guest's signatures name it.
    netref: Option<ResourceType>,
    lent: Vec<ResourceAny>,
    /// The netref handles lent for the call only: the host still owns them
    /// and drops them after the call.
    borrowed: Vec<ResourceAny>,
    /// The guest's exposed classes and its objects the peer holds.
    guest: Option<(&'a [Class], &'a GuestObjects)>,
}

impl<'a, 'b> StoreLend<'a, 'b> {
    /// Lends into `store`'s guest, whose signatures name the `netref`
    /// resource `netref` (the type the component imports).
    pub(crate) fn new(
        store: &'a mut StoreContextMut<'b, HostState>,
        netref: Option<ResourceType>,
    ) -> Self {
        StoreLend {
            store,
            netref,
            lent: Vec::new(),
            borrowed: Vec::new(),
            guest: None,
        }
    }

    /// Also hands the guest its own objects back, by their classes.
    pub(crate) fn with_objects(mut self, classes: &'a [Class], objects: &'a GuestObjects) -> Self {
        self.guest = Some((classes, objects));
        self
    }

    /// Drops the handles lent so far (their objects are released as the
    /// guest's own drops would release them).
    pub(crate) fn take_back(self) {
        drop_netrefs(self.store, self.lent);
    }

    /// The netref handles the guest only borrows: drop them with
    /// [`drop_netrefs`] once the call is over.
    pub(crate) fn into_borrowed(self) -> Vec<ResourceAny> {
        self.borrowed
    }
}

impl Lend for StoreLend<'_, '_> {
    fn lend(&mut self, object: ObjectRef) -> Result<Val, Mismatch> {
        let too_many = || {
            Mismatch::new(
                format!("room for another netref (a service holds at most {MAX_GUEST_NETREFS})"),
                &Value::Object(object.clone()),
            )
        };
        let rep = self
            .store
            .data_mut()
            .netrefs
            .lend(object.clone())
            .ok_or_else(too_many)?;
        let handle = Resource::<NetrefResource>::new_own(rep)
            .try_into_resource_any(&mut *self.store)
            .map_err(|e| {
                Mismatch::new(
                    format!("a netref handle ({e})"),
                    &Value::Object(object.clone()),
                )
            })?;
        self.lent.push(handle);
        Ok(Val::Resource(handle))
    }

    fn resource(&mut self, value: Value, ty: &ResourceType) -> Result<Val, Mismatch> {
        if self.netref.as_ref() == Some(ty) {
            return match value {
                Value::Object(object) if object.holder == Holder::Sender => self.lend(object),
                other => Err(Mismatch::new(
                    "a netref (an object passed by reference)",
                    &other,
                )),
            };
        }
        let Some((classes, objects)) = self.guest else {
            return Err(Mismatch::new("a resource this service can receive", &value));
        };
        let Some(class) = classes.iter().find(|class| class.ty == *ty) else {
            return Err(Mismatch::new("a resource this service can receive", &value));
        };
        match &value {
            Value::Local(Local::Service(object)) if object.class == class.name => {
                objects.get(object).map(Val::Resource).ok_or_else(|| {
                    Mismatch::new(
                        format!(
                            "a live {} (this one was lost when the service trapped)",
                            class.name
                        ),
                        &value,
                    )
                })
            }
            _ => Err(Mismatch::new(
                format!("a {} object of this service", class.name),
                &value,
            )),
        }
    }

    fn borrow(&mut self, value: Value, ty: &ResourceType) -> Result<Val, Mismatch> {
        let netref = self.netref.as_ref() == Some(ty);
        let val = self.resource(value, ty)?;
        if let (true, Val::Resource(handle)) = (netref, &val) {
            self.borrowed.push(*handle);
        }
        Ok(val)
    }
}

/// Drops netref handles the host owns in `store`: each forgets its object,
/// which is released on the peer when no handle names it any more. (Dropping
/// a host resource's handle from the host does not run its destructor, so
/// this does what the destructor does.)
pub(crate) fn drop_netrefs(store: &mut StoreContextMut<'_, HostState>, handles: Vec<ResourceAny>) {
    for handle in handles {
        match Resource::<NetrefResource>::try_from_resource_any(handle, &mut *store) {
            Ok(netref) => store.data_mut().drop_netref(netref.rep()),
            Err(error) => tracing::warn!(%error, "a netref handle could not be dropped"),
        }
    }
}

/// Drops handles to the guest's own resources in `store`: their destructors
/// run. A failure is logged: the handle is gone either way.
pub(crate) async fn drop_all(
    store: &mut StoreContextMut<'_, HostState>,
    handles: Vec<ResourceAny>,
) {
    for handle in handles {
        if let Err(error) = handle.resource_drop_async(&mut *store).await {
            tracing::warn!(%error, "a resource handle could not be dropped");
        }
    }
}

/// The host side of the `netref` resource.
pub(crate) struct NetrefResource;

/// The type of `wasm-rpyc:service/types.netref`, as the host defines it.
pub(crate) fn netref_type() -> ResourceType {
    ResourceType::host::<NetrefResource>()
}

/// The object of the peer's that a guest's handle names.
pub(crate) fn named(
    store: &mut StoreContextMut<'_, HostState>,
    handle: &Val,
) -> Result<ObjectId, Exception> {
    let Val::Resource(handle) = handle else {
        return Err(Exception::type_error("expected a netref"));
    };
    let rep = Resource::<NetrefResource>::try_from_resource_any(*handle, &mut *store)
        .map_err(|e| Exception::type_error(format!("not a netref: {e}")))?
        .rep();
    store
        .data()
        .netrefs
        .get(rep)
        .map(|object| object.id)
        .ok_or_else(|| Exception::reference_error("the netref was already dropped"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(id: ObjectId) -> ObjectRef {
        ObjectRef {
            holder: Holder::Sender,
            id,
            class: "builtins.function".into(),
        }
    }

    #[test]
    fn an_object_is_released_with_its_last_handle() {
        let mut netrefs = GuestNetrefs::default();
        let a = netrefs.lend(object(7)).unwrap();
        let b = netrefs.lend(object(7)).unwrap();
        let c = netrefs.lend(object(8)).unwrap();
        assert_eq!(netrefs.get(b).map(|o| o.id), Some(7));
        assert_eq!(netrefs.drop_handle(a), None, "b still names 7");
        assert!(netrefs.holds(7));
        assert_eq!(netrefs.drop_handle(b), Some(7));
        assert!(!netrefs.holds(7));
        assert_eq!(netrefs.drop_handle(b), None, "dropped twice");
        assert_eq!(netrefs.drop_handle(c), Some(8));
    }
}
