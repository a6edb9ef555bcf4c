//! A compiled, checked service component: what every instance of it needs
//! (the pre-instantiated component, its methods, hooks, classes, aliases
//! grants and limits).

use std::collections::HashMap;

use wasmtime::component::{InstancePre, ResourceType};

use super::classes::Class;
use super::grants::Grants;
use super::host::HostState;
use super::method::Method;
use super::objects::ObjectsExports;
use super::{Runtime, ServiceLimits};

/// A compiled component and what the host read from it.
#[derive(Clone)]
pub(crate) struct Compiled {
    pub(crate) runtime: Runtime,
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) aliases: Vec<String>,
    /// The aliases its `service-aliases` export declares, if any.
    pub(crate) declared_aliases: Vec<String>,
    pub(crate) methods: HashMap<String, Method>,
    pub(crate) on_connect: Option<Method>,
    pub(crate) on_disconnect: Option<Method>,
    /// The `netref` resource as this component's signatures name it (the
    /// type it imports), if it imports one.
    pub(crate) netref: Option<ResourceType>,
    /// The exposed classes; each one's constructor is in `methods`.
    pub(crate) classes: Vec<Class>,
    /// Its `objects` export, if it serves its own objects.
    pub(crate) objects: Option<ObjectsExports>,
    /// What the service may reach beyond its memory.
    pub(crate) grants: Grants,
    /// The bounds its instances run under.
    pub(crate) limits: ServiceLimits,
    /// The SHA-256 of the bytes it was compiled from.
    pub(crate) digest: [u8; 32],
}

impl Compiled {
    /// The exposed classes, each with the names of its exposed methods.
    pub(crate) fn exposed_classes(&self) -> Vec<(String, Vec<String>)> {
        self.classes
            .iter()
            .map(|class| (class.name.clone(), class.methods.keys().cloned().collect()))
            .collect()
    }
}
