//! The guest's objects the peer holds: an exposed class's resources and the
//! handles of a service that serves its own objects (`objects`), each known
//! to the host by a handle of its own, and the taking of what a guest hands
//! over.

use std::collections::HashMap;

use wasmtime::StoreContextMut;
use wasmtime::component::{Resource, ResourceAny, ResourceType};

use super::classes::Class;
use super::convert::{Keep, Unreturnable};
use super::host::HostState;
use crate::held::PeerObject;
use crate::local::{Local, ServiceObject};
use crate::value::Value;

/// One of the guest's objects the peer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuestObject {
    /// An instance of an exposed class.
    Resource(ResourceAny),
    /// An object of a service that serves its own (`objects`), by the
    /// guest's handle.
    Served(u64),
}

/// The guest's objects the peer holds, by the host's handle.
pub(crate) struct GuestObjects {
    by_handle: HashMap<u64, GuestObject>,
    /// Handles are never reused, not even by the next instance after a trap,
    /// so a handle from before a trap names nothing (a guest's own handles
    /// start again in its next instance).
    next: u64,
    /// How many the peer may hold at once: as many as the connection may
    /// lend it.
    limit: usize,
    /// The guest's handles of objects it handed over that could not be lent,
    /// for it to release once it is free.
    given_up: Vec<u64>,
}

impl GuestObjects {
    /// An empty table for at most `limit` objects, whose handles start at
    /// `first`.
    pub(crate) fn starting_at(first: u64, limit: usize) -> Self {
        GuestObjects {
            by_handle: HashMap::new(),
            next: first,
            limit,
            given_up: Vec::new(),
        }
    }

    /// Takes the guest's handles to release (see [`StoreKeep::finish`]).
    pub(crate) fn take_given_up(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.given_up)
    }

    /// The handle the next object will get.
    pub(crate) fn next_handle(&self) -> u64 {
        self.next
    }

    /// The guest's object behind `object`.
    pub(crate) fn get(&self, object: &ServiceObject) -> Option<GuestObject> {
        self.by_handle.get(&object.handle).copied()
    }

    /// Takes the object behind `handle` out of the table.
    pub(crate) fn remove(&mut self, handle: u64) -> Option<GuestObject> {
        self.by_handle.remove(&handle)
    }

    fn insert(&mut self, object: GuestObject) -> Option<u64> {
        if self.by_handle.len() >= self.limit {
            return None;
        }
        let handle = self.next;
        self.next += 1;
        self.by_handle.insert(handle, object);
        Some(handle)
    }
}

/// Takes the objects a guest hands over: its own (an exposed class's, or
/// those it serves) go into its table, to be lent to the peer; a `netref`
/// it gives up becomes the peer's own object again.
pub(crate) struct StoreKeep<'a, 'b> {
    store: &'a mut StoreContextMut<'b, HostState>,
    /// The guest's exposed classes.
    classes: &'a [Class],
    /// Objects the guest handed over that cannot be lent, to let go.
    given_up: Vec<GuestObject>,
    /// The handles of the objects taken into the table so far.
    taken: Vec<u64>,
}

impl<'a, 'b> StoreKeep<'a, 'b> {
    /// Takes netrefs and the objects the guest serves from `store`'s guest.
    pub(crate) fn new(store: &'a mut StoreContextMut<'b, HostState>) -> Self {
        StoreKeep {
            store,
            classes: &[],
            given_up: Vec::new(),
            taken: Vec::new(),
        }
    }

    /// Also takes the guest's instances of its exposed `classes`.
    pub(crate) fn with_classes(mut self, classes: &'a [Class]) -> Self {
        self.classes = classes;
        self
    }

    /// Gives up every object taken so far: the value they came in is not
    /// delivered (it was malformed, or a later object did not fit), so
    /// nobody will release them.
    pub(crate) fn give_back(&mut self) {
        let objects = &mut self.store.data_mut().objects;
        for handle in self.taken.drain(..) {
            self.given_up.extend(objects.remove(handle));
        }
    }

    /// Drops the resources the guest handed over that could not be lent
    /// (the table was full), so their destructors run; the handles of the
    /// objects it serves wait in the table for it to release them.
    pub(crate) async fn finish(self) {
        for object in self.given_up {
            match object {
                GuestObject::Resource(resource) => {
                    if let Err(error) = resource.resource_drop_async(&mut *self.store).await {
                        tracing::warn!(%error, "a resource handle could not be dropped");
                    }
                }
                GuestObject::Served(handle) => {
                    self.store.data_mut().objects.given_up.push(handle);
                }
            }
        }
    }

    /// Lends `object` of `class` (itself a class when `is_class`) to the
    /// peer through the table.
    fn keep(
        &mut self,
        object: GuestObject,
        class: String,
        is_class: bool,
    ) -> Result<Value, Unreturnable> {
        let objects = &mut self.store.data_mut().objects;
        let Some(handle) = objects.insert(object) else {
            let limit = objects.limit;
            self.given_up.push(object);
            return Err(Unreturnable::Refused(format!(
                "the service lends as many objects as it may ({limit})"
            )));
        };
        self.taken.push(handle);
        Ok(Value::Local(Local::Service(ServiceObject {
            handle,
            class,
            is_class,
        })))
    }
}

impl Keep for StoreKeep<'_, '_> {
    fn resource(
        &mut self,
        resource: ResourceAny,
        ty: &ResourceType,
    ) -> Result<Value, Unreturnable> {
        match self.classes.iter().find(|class| class.ty == *ty) {
            Some(class) => self.keep(GuestObject::Resource(resource), class.name.clone(), false),
            None => self.netref(resource),
        }
    }

    fn object(&mut self, object: ServiceObject) -> Result<Value, Unreturnable> {
        let served = GuestObject::Served(object.handle);
        self.keep(served, object.class, object.is_class)
    }

    fn netref(&mut self, resource: ResourceAny) -> Result<Value, Unreturnable> {
        let rep = Resource::<PeerObject>::try_from_resource_any(resource, &mut *self.store)
            .map_err(|e| Unreturnable::Malformed(format!("a resource that cannot be sent ({e})")))?
            .rep();
        // The handle is the host's now: the object is released once the
        // value is sent, if nothing else holds it.
        let object =
            self.store.data_mut().drop_netref(rep).ok_or_else(|| {
                Unreturnable::Malformed("a netref that was already dropped".into())
            })?;
        Ok(Value::Remote(object))
    }
}
