//! What one connection gets of a service component: an instance of its
//! own, or its share of the instance every connection shares.

use super::instance::ServiceInstance;
use super::shared::SharedConnection;
use crate::exception::Exception;
use crate::executor::Executor;
use crate::local::ServiceObject;
use crate::peer::Peer;
use crate::service::{ObjectRequest, Service};
use crate::value::Value;

/// One connection's service of a component: an instance of its own, or
/// (for a [shared](super::ServiceComponent::shared) component) its share of
/// the one instance.
pub struct WasmService(Serving);

enum Serving {
    Own(ServiceInstance),
    Shared(SharedConnection),
}

impl From<ServiceInstance> for WasmService {
    fn from(instance: ServiceInstance) -> Self {
        WasmService(Serving::Own(instance))
    }
}

impl From<SharedConnection> for WasmService {
    fn from(connection: SharedConnection) -> Self {
        WasmService(Serving::Shared(connection))
    }
}

/// `$body` with `$service` bound to whichever service `$serving` holds.
macro_rules! either {
    ($serving:expr, $service:ident => $body:expr) => {
        match $serving {
            Serving::Own($service) => $body,
            Serving::Shared($service) => $body,
        }
    };
}

impl Service for WasmService {
    fn aliases(&self) -> &[String] {
        either!(&self.0, s => s.aliases())
    }

    fn exposed_names(&self) -> Vec<String> {
        either!(&self.0, s => s.exposed_names())
    }

    fn exposed_classes(&self) -> Vec<(String, Vec<String>)> {
        either!(&self.0, s => s.exposed_classes())
    }

    async fn call(
        &mut self,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        either!(&mut self.0, s => s.call(name, args, kwargs).await)
    }

    async fn release_object(&mut self, object: ServiceObject) {
        either!(&mut self.0, s => s.release_object(object).await)
    }

    async fn on_connect(&mut self, peer: Peer) -> Result<(), Exception> {
        either!(&mut self.0, s => s.on_connect(peer).await)
    }

    async fn on_disconnect(&mut self) {
        either!(&mut self.0, s => s.on_disconnect().await)
    }

    fn serves_objects(&self) -> bool {
        either!(&self.0, s => s.serves_objects())
    }

    async fn object_request(
        &mut self,
        object: Option<&ServiceObject>,
        request: ObjectRequest,
    ) -> Result<Value, Exception> {
        either!(&mut self.0, s => s.object_request(object, request).await)
    }

    fn executor(&self) -> Option<Executor> {
        either!(&self.0, s => s.executor())
    }
}
