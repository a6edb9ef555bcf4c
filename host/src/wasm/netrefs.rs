//! The peer's objects a guest holds as `netref` handles. Each handle is a
//! [`PeerObject`] kept in the store's resource table; dropping the guest's
//! last handle to an object releases it on the peer.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceAny, ResourceType, Val};

use super::classes::Class;
use super::convert::{Lend, Mismatch};
use super::guest_objects::GuestObject;
use super::host::{HostState, TYPES_INTERFACE};
use crate::exception::Exception;
use crate::held::PeerObject;
use crate::local::{Local, ServiceObject};
use crate::value::Value;

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
    /// The guest's exposed classes.
    classes: &'a [Class],
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
            classes: &[],
        }
    }

    /// Also hands the guest its instances of its exposed `classes` back.
    pub(crate) fn with_classes(mut self, classes: &'a [Class]) -> Self {
        self.classes = classes;
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
    fn lend(&mut self, object: PeerObject) -> Result<Val, Mismatch> {
        let state = self.store.data_mut();
        let limit = state.max_netrefs();
        let Some(netref) = state.push_netref(object.clone()) else {
            return Err(Mismatch::new(
                format!("room for another netref (a service holds at most {limit})"),
                &Value::Remote(object),
            ));
        };
        let handle = netref
            .try_into_resource_any(&mut *self.store)
            .map_err(|e| Mismatch::new(format!("a netref handle ({e})"), &Value::Remote(object)))?;
        self.lent.push(handle);
        Ok(Val::Resource(handle))
    }

    fn resource(&mut self, value: Value, ty: &ResourceType) -> Result<Val, Mismatch> {
        if self.netref.as_ref() == Some(ty) {
            return match value {
                Value::Remote(object) => self.lend(object),
                other => Err(Mismatch::new(
                    "a netref (an object passed by reference)",
                    &other,
                )),
            };
        }
        let Some(class) = self.classes.iter().find(|class| class.ty == *ty) else {
            return Err(Mismatch::new("a resource this service can receive", &value));
        };
        match &value {
            Value::Local(Local::Service(object)) if object.class == class.name => {
                let objects = &self.store.data().objects;
                let resource = match objects.get(object) {
                    Some(GuestObject::Resource(resource)) => Some(resource),
                    _ => None,
                };
                resource.map(Val::Resource).ok_or_else(|| {
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

    fn object(&mut self, object: &ServiceObject) -> Result<u64, Mismatch> {
        match self.store.data().objects.get(object) {
            Some(GuestObject::Served(handle)) => Ok(handle),
            _ => Err(Mismatch::new(
                "one of the service's live objects (this one was lost when the service trapped)",
                &Value::Local(Local::Service(object.clone())),
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
        match Resource::<PeerObject>::try_from_resource_any(handle, &mut *store) {
            Ok(netref) => drop(store.data_mut().drop_netref(netref.rep())),
            Err(error) => tracing::warn!(%error, "a netref handle could not be dropped"),
        }
    }
}

/// Defines the `netref` resource of the shared `types` interface in
/// `linker`: dropping a guest's last handle to an object releases it on
/// the peer.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut types = linker.instance(TYPES_INTERFACE)?;
    types.resource("netref", netref_type(), |mut store, rep| {
        store.data_mut().drop_netref(rep);
        Ok(())
    })?;
    types.func_wrap(
        "[method]netref.class-name",
        |store, (netref,): (Resource<PeerObject>,)| {
            let object = store.data().netref(netref.rep());
            let class = object.map(|object| object.class().to_owned());
            Ok((class.ok_or_else(|| wasmtime::format_err!("a dropped netref"))?,))
        },
    )?;
    types.func_wrap(
        "[method]netref.duplicate",
        |mut store, (netref,): (Resource<PeerObject>,)| {
            let state = store.data_mut();
            let object = state.netref(netref.rep()).cloned();
            let object = object.ok_or_else(|| wasmtime::format_err!("a dropped netref"))?;
            Ok((state.push_netref(object),))
        },
    )?;
    Ok(())
}

/// The type of `wasm-rpyc:service/types.netref`, as the host defines it.
pub(crate) fn netref_type() -> ResourceType {
    ResourceType::host::<PeerObject>()
}

/// The object of the peer's that a guest's handle names.
pub(crate) fn named(
    store: &mut StoreContextMut<'_, HostState>,
    handle: &Val,
) -> Result<PeerObject, Exception> {
    let Val::Resource(handle) = handle else {
        return Err(Exception::type_error("expected a netref"));
    };
    let rep = Resource::<PeerObject>::try_from_resource_any(*handle, &mut *store)
        .map_err(|e| Exception::type_error(format!("not a netref: {e}")))?
        .rep();
    store
        .data()
        .netref(rep)
        .cloned()
        .ok_or_else(|| Exception::reference_error("the netref was already dropped"))
}
