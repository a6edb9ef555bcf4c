//! The service abstraction: the root object a side exposes to its peer, with
//! a name, aliases, exposed methods and connection hooks.

use std::future::Future;

use crate::connection::Peer;
use crate::exception::Exception;
use crate::value::Value;

/// The service one side of a connection exposes; one value per connection.
///
/// Names passed to [`Service::exposes`] and [`Service::call`] are snake_case
/// without the `exposed_` prefix: the connection strips it, so `add` and
/// `exposed_add` reach the same method. Every root also answers
/// `get_service_name()` and `get_service_aliases()` from [`Service::aliases`]
/// unless it exposes methods of those names itself.
pub trait Service: Send + 'static {
    /// The service's names, upper-cased, the proper name first (RPyC's
    /// `get_service_aliases()`); never empty.
    fn aliases(&self) -> &[String];

    /// Whether `name` is an exposed method. A name that is not exposed and
    /// one that does not exist are the same to the peer: `AttributeError`.
    fn exposes(&self, name: &str) -> bool;

    /// The names of the exposed methods (for `dir()` and RPyC's INSPECT).
    fn exposed_names(&self) -> Vec<String>;

    /// Calls the exposed method `name`.
    fn call(
        &mut self,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> impl Future<Output = Result<Value, Exception>> + Send;

    /// Runs once when the connection is established, before any request is
    /// served; `peer` reaches the other side. An error closes the connection.
    fn on_connect(&mut self, peer: Peer) -> impl Future<Output = Result<(), Exception>> + Send {
        let _ = peer;
        async { Ok(()) }
    }

    /// Runs once when the connection has ended; the peer is already gone.
    fn on_disconnect(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// RPyC's `VoidService`: exposes nothing. Clients serve it by default.
#[derive(Debug)]
pub struct VoidService {
    aliases: [String; 1],
}

impl Default for VoidService {
    fn default() -> Self {
        VoidService {
            aliases: ["VOID".to_owned()],
        }
    }
}

impl Service for VoidService {
    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn exposes(&self, _name: &str) -> bool {
        false
    }

    fn exposed_names(&self) -> Vec<String> {
        Vec::new()
    }

    async fn call(
        &mut self,
        name: &str,
        _: Vec<Value>,
        _: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        Err(Exception::no_attribute(name))
    }
}

/// A service's aliases as RPyC computes them: the declared aliases
/// upper-cased, or else the type's name upper-cased without a trailing
/// `Service` (and the separator before it): `CalculatorService` and
/// `calculator_service` are both `CALCULATOR`.
pub fn service_aliases(declared: &[String], type_name: &str) -> Vec<String> {
    if !declared.is_empty() {
        return declared.iter().map(|a| a.to_uppercase()).collect();
    }
    let upper = type_name.to_uppercase();
    let trimmed = upper
        .strip_suffix("SERVICE")
        .map(|s| s.trim_end_matches(['_', '-']))
        .filter(|s| !s.is_empty())
        .unwrap_or(&upper);
    vec![trimmed.to_owned()]
}

/// The methods every root answers, as RPyC's `Service` does.
const ROOT_METHODS: [&str; 2] = ["get_service_name", "get_service_aliases"];

/// The method `name` asks for on a root, without the `exposed_` prefix, if
/// the root has it.
pub(crate) fn root_method<'a, S: Service>(service: &S, name: &'a str) -> Option<&'a str> {
    let name = name.strip_prefix("exposed_").unwrap_or(name);
    (service.exposes(name) || ROOT_METHODS.contains(&name)).then_some(name)
}

/// Every method name of a root, sorted.
pub(crate) fn root_methods<S: Service>(service: &S) -> Vec<String> {
    let mut names = service.exposed_names();
    names.extend(ROOT_METHODS.iter().map(|n| n.to_string()));
    names.sort_unstable();
    names.dedup();
    names
}

/// Calls `name` on the root `service` of a connection: the `exposed_` rule,
/// then the service's own methods, then the methods every root has.
pub(crate) async fn call_root<S: Service>(
    service: &mut S,
    name: &str,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> Result<Value, Exception> {
    let Some(method) = root_method(service, name) else {
        return Err(Exception::no_attribute(name));
    };
    if service.exposes(method) {
        return service.call(method, args, kwargs).await;
    }
    if !args.is_empty() || !kwargs.is_empty() {
        return Err(Exception::type_error(format!(
            "{method}() takes no arguments"
        )));
    }
    Ok(match method {
        "get_service_name" => Value::Str(service.aliases()[0].clone()),
        _ => Value::Tuple(service.aliases().iter().cloned().map(Value::Str).collect()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_follow_rpyc() {
        assert_eq!(service_aliases(&[], "CalculatorService"), ["CALCULATOR"]);
        assert_eq!(service_aliases(&[], "calculator_service"), ["CALCULATOR"]);
        assert_eq!(service_aliases(&[], "calculator"), ["CALCULATOR"]);
        assert_eq!(service_aliases(&[], "Service"), ["SERVICE"]);
        let declared = ["foo".to_owned(), "bar".to_owned(), "spam".to_owned()];
        assert_eq!(
            service_aliases(&declared, "MyService"),
            ["FOO", "BAR", "SPAM"]
        );
    }

    #[tokio::test]
    async fn every_root_answers_its_name_and_hides_the_rest() {
        let mut void = VoidService::default();
        let name = call_root(&mut void, "get_service_name", vec![], vec![]).await;
        assert_eq!(name, Ok(Value::Str("VOID".into())));
        let name = call_root(&mut void, "exposed_get_service_aliases", vec![], vec![]).await;
        assert_eq!(name, Ok(Value::Tuple(vec![Value::Str("VOID".into())])));
        let err = call_root(&mut void, "get_service_name", vec![Value::None], vec![]).await;
        assert!(err.unwrap_err().is("TypeError"));
        let err = call_root(&mut void, "add", vec![], vec![])
            .await
            .unwrap_err();
        assert_eq!(err, Exception::no_attribute("add"));
    }
}
