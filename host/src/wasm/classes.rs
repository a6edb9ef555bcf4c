//! Exposed classes: a resource a component exports as `exposed-<name>` is
//! RPyC's `exposed_<Name>`. Peers construct instances, call their exposed
//! methods and hold them by reference; the instance keeps each object the
//! peer holds by a handle, and drops it when the peer releases it.

use std::collections::HashMap;

use wasmtime::StoreContextMut;
use wasmtime::component::{Resource, ResourceAny, ResourceType};

use super::convert::{Keep, Malformed};
use super::host::HostState;
use super::method::Method;
use super::netrefs::NetrefResource;
use crate::local::{Local, ServiceObject};
use crate::protocol::{Holder, ObjectRef};
use crate::value::Value;

/// How many objects one instance may have lent to the peer at once: the
/// connection's own table of lent objects has the same default bound.
pub const MAX_GUEST_OBJECTS: usize = crate::connection::DEFAULT_MAX_LENT_OBJECTS;

/// An exposed class.
#[derive(Clone)]
pub(crate) struct Class {
    /// The Python name: `exposed-my-class` is `MyClass`.
    pub(crate) name: String,
    /// The resource as the component's signatures name it.
    pub(crate) ty: ResourceType,
    /// The exposed methods by Python name; each takes the object first.
    pub(crate) methods: HashMap<String, Method>,
}

/// The Python name of a class: kebab-case becomes UpperCamelCase.
pub(crate) fn class_name(wit: &str) -> String {
    wit.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The guest's objects the peer holds, by handle.
#[derive(Default)]
pub(crate) struct GuestObjects {
    by_handle: HashMap<u64, ResourceAny>,
    /// Handles are never reused, not even by the next instance after a trap,
    /// so a handle from before a trap names nothing.
    next: u64,
}

impl GuestObjects {
    /// The resource behind `object`.
    pub(crate) fn get(&self, object: &ServiceObject) -> Option<ResourceAny> {
        self.by_handle.get(&object.handle).copied()
    }

    /// Takes the resource behind `handle` out of the table.
    pub(crate) fn remove(&mut self, handle: u64) -> Option<ResourceAny> {
        self.by_handle.remove(&handle)
    }

    /// Forgets every object: their store is gone.
    pub(crate) fn clear(&mut self) {
        self.by_handle.clear();
    }

    fn insert(&mut self, resource: ResourceAny) -> Option<u64> {
        if self.by_handle.len() >= MAX_GUEST_OBJECTS {
            return None;
        }
        let handle = self.next;
        self.next += 1;
        self.by_handle.insert(handle, resource);
        Some(handle)
    }
}

/// Takes the resources a guest returns: its exposed-class objects go into
/// its table, to be lent to the peer; a `netref` it gives back becomes the
/// peer's own object again (and its handle is dropped afterwards).
pub(crate) struct StoreKeep<'a, 'b> {
    pub(crate) store: &'a mut StoreContextMut<'b, HostState>,
    pub(crate) classes: &'a [Class],
    pub(crate) objects: &'a mut GuestObjects,
    /// Netref handles the guest gave back, to drop once converted.
    pub(crate) returned: Vec<ResourceAny>,
}

impl Keep for StoreKeep<'_, '_> {
    fn resource(&mut self, resource: ResourceAny, ty: &ResourceType) -> Result<Value, Malformed> {
        if let Some(class) = self.classes.iter().find(|class| class.ty == *ty) {
            let Some(handle) = self.objects.insert(resource) else {
                self.returned.push(resource);
                return Err(Malformed(format!(
                    "the service lends as many objects as it may ({MAX_GUEST_OBJECTS})"
                )));
            };
            return Ok(Value::Local(Local::Service(ServiceObject {
                handle,
                class: class.name.clone(),
            })));
        }
        self.returned.push(resource);
        let rep = Resource::<NetrefResource>::try_from_resource_any(resource, &mut *self.store)
            .map_err(|e| Malformed(format!("a resource that cannot be sent ({e})")))?
            .rep();
        let object = self
            .store
            .data()
            .netrefs
            .get(rep)
            .ok_or_else(|| Malformed("a netref that was already dropped".into()))?;
        Ok(Value::Object(ObjectRef {
            holder: Holder::Receiver,
            ..object.clone()
        }))
    }
}

impl StoreKeep<'_, '_> {
    /// Drops the netref handles the guest gave back (each release goes to
    /// the peer after the reply that hands the object back).
    pub(crate) async fn finish(self) {
        for handle in self.returned {
            if let Err(error) = handle.resource_drop_async(&mut *self.store).await {
                tracing::warn!(%error, "a returned resource could not be dropped");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_are_upper_camel_case() {
        assert_eq!(class_name("my-class"), "MyClass");
        assert_eq!(class_name("point"), "Point");
        assert_eq!(class_name("http-client2"), "HttpClient2");
    }
}
