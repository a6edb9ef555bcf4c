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
use crate::held::PeerObject;
use crate::local::{Local, ServiceObject};
use crate::value::Value;

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
pub(crate) struct GuestObjects {
    by_handle: HashMap<u64, ResourceAny>,
    /// Handles are never reused, not even by the next instance after a trap,
    /// so a handle from before a trap names nothing.
    next: u64,
    /// How many the peer may hold at once: as many as the connection may
    /// lend it.
    limit: usize,
}

impl Default for GuestObjects {
    fn default() -> Self {
        GuestObjects::with_limit(crate::connection::DEFAULT_MAX_LENT_OBJECTS)
    }
}

impl GuestObjects {
    /// An empty table for at most `limit` objects.
    pub(crate) fn with_limit(limit: usize) -> Self {
        GuestObjects {
            by_handle: HashMap::new(),
            next: 0,
            limit,
        }
    }

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
        if self.by_handle.len() >= self.limit {
            return None;
        }
        let handle = self.next;
        self.next += 1;
        self.by_handle.insert(handle, resource);
        Some(handle)
    }
}

/// Takes the resources a guest hands over: its exposed-class objects go into
/// its table, to be lent to the peer; a `netref` it gives up becomes the
/// peer's own object again.
pub(crate) struct StoreKeep<'a, 'b> {
    store: &'a mut StoreContextMut<'b, HostState>,
    /// The guest's exposed classes and its objects the peer holds.
    guest: Option<(&'a [Class], &'a mut GuestObjects)>,
    /// Objects the guest handed over that cannot be lent, to drop.
    given_up: Vec<ResourceAny>,
}

impl<'a, 'b> StoreKeep<'a, 'b> {
    /// Takes netrefs from `store`'s guest.
    pub(crate) fn new(store: &'a mut StoreContextMut<'b, HostState>) -> Self {
        StoreKeep {
            store,
            guest: None,
            given_up: Vec::new(),
        }
    }

    /// Also takes the guest's objects of its exposed `classes` into `objects`.
    pub(crate) fn with_objects(
        mut self,
        classes: &'a [Class],
        objects: &'a mut GuestObjects,
    ) -> Self {
        self.guest = Some((classes, objects));
        self
    }

    /// Drops the objects the guest handed over that could not be lent (the
    /// table was full): their destructors run.
    pub(crate) async fn finish(self) {
        drop_all(self.store, self.given_up).await;
    }
}

impl Keep for StoreKeep<'_, '_> {
    fn resource(&mut self, resource: ResourceAny, ty: &ResourceType) -> Result<Value, Malformed> {
        let Some((classes, objects)) = &mut self.guest else {
            return self.netref(resource);
        };
        let Some(class) = classes.iter().find(|class| class.ty == *ty) else {
            return self.netref(resource);
        };
        let Some(handle) = objects.insert(resource) else {
            self.given_up.push(resource);
            return Err(Malformed(format!(
                "the service lends as many objects as it may ({})",
                objects.limit
            )));
        };
        Ok(Value::Local(Local::Service(ServiceObject {
            handle,
            class: class.name.clone(),
        })))
    }

    fn netref(&mut self, resource: ResourceAny) -> Result<Value, Malformed> {
        let rep = Resource::<PeerObject>::try_from_resource_any(resource, &mut *self.store)
            .map_err(|e| Malformed(format!("a resource that cannot be sent ({e})")))?
            .rep();
        // The handle is the host's now: the object is released once the
        // value is sent, if nothing else holds it.
        let object = self
            .store
            .data_mut()
            .drop_netref(rep)
            .ok_or_else(|| Malformed("a netref that was already dropped".into()))?;
        Ok(Value::Remote(object))
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
