//! The service abstraction: the root object a side exposes to its peer, with
//! a name, aliases, exposed methods and connection hooks.

use std::collections::HashMap;
use std::future::Future;

use crate::exception::Exception;
use crate::executor::Executor;
use crate::local::ServiceObject;
use crate::peer::Peer;
use crate::value::Value;

/// The service one side of a connection exposes; one value per connection.
///
/// Names passed to [`Service::call`] are snake_case without the `exposed_`
/// prefix: the connection strips it, so `add` and `exposed_add` reach the
/// same method. Every root also answers `get_service_name()` and
/// `get_service_aliases()` from [`Service::aliases`] unless it exposes
/// methods of those names itself.
pub trait Service: Send + 'static {
    /// The service's names, upper-cased, the proper name first (RPyC's
    /// `get_service_aliases()`); never empty.
    fn aliases(&self) -> &[String];

    /// The names of the exposed methods. A name that is not exposed and one
    /// that does not exist are the same to the peer: `AttributeError`. Read
    /// once per connection, after [`Service::on_connect`].
    fn exposed_names(&self) -> Vec<String>;

    /// The exposed classes (RPyC's `exposed_MyClass`), each with the names of
    /// its exposed methods. A peer constructs one by calling the class's name
    /// on the root, which reaches [`Service::call`]; the service answers with
    /// a [`Local::Service`](crate::local::Local::Service) value, which the
    /// peer then holds by reference, and its methods are called through
    /// [`Service::object_request`]. Read once per connection, and again
    /// when a call returns an object of a class not listed.
    fn exposed_classes(&self) -> Vec<(String, Vec<String>)> {
        Vec::new()
    }

    /// Calls the exposed method `name` (or constructs the exposed class
    /// `name`). When the peer goes away during the call, its future is
    /// dropped before it completes (so are [`Service::object_request`]'s):
    /// the service must cope with a call abandoned half way.
    fn call(
        &mut self,
        name: &str,
        args: Vec<Value>,
        kwargs: Vec<(String, Value)>,
    ) -> impl Future<Output = Result<Value, Exception>> + Send;

    /// The peer no longer holds `object`: the service may let it go.
    fn release_object(&mut self, object: ServiceObject) -> impl Future<Output = ()> + Send {
        let _ = object;
        async {}
    }

    /// Runs once when the connection is established, before any request is
    /// served; `peer` reaches the other side. An error closes the connection.
    fn on_connect(&mut self, peer: Peer) -> impl Future<Output = Result<(), Exception>> + Send {
        let _ = peer;
        async { Ok(()) }
    }

    /// Runs once when the connection has ended and every object lent to the
    /// peer has been released; the peer is already gone.
    fn on_disconnect(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Whether the service answers every request about its own objects of
    /// classes it does not list, and about the members of its root beyond
    /// [`Service::exposed_names`], through [`Service::object_request`] (a
    /// service built from a Python class does); by default its exposed
    /// names and classes are all there is.
    fn serves_objects(&self) -> bool {
        false
    }

    /// Whether the service answers for the members of its root beyond
    /// [`Service::exposed_names`] (and describes its root) itself; by
    /// default, when it [serves its objects](Service::serves_objects).
    fn serves_root(&self) -> bool {
        self.serves_objects()
    }

    /// Answers `request` about `object`, one of the service's own objects,
    /// or about its root when `None`. Of an instance of a listed exposed
    /// class, only calls of its exposed methods are asked (the connection
    /// answers the rest from the lists); objects of other classes are asked
    /// of a service that [serves its objects](Service::serves_objects), its
    /// root of one that [serves its root](Service::serves_root).
    fn object_request(
        &mut self,
        object: Option<&ServiceObject>,
        request: ObjectRequest,
    ) -> impl Future<Output = Result<Value, Exception>> + Send {
        let _ = object;
        let error = match request {
            ObjectRequest::GetAttr(name)
            | ObjectRequest::SetAttr { name, .. }
            | ObjectRequest::DelAttr(name)
            | ObjectRequest::Call {
                method: Some(name), ..
            } => Exception::no_attribute(&name),
            ObjectRequest::Pickle { .. } => pickling_disabled(),
            ObjectRequest::BuffIter(_) => not_iterable(),
            ObjectRequest::ExitContext(_) => Exception::no_attribute("__exit__"),
            ObjectRequest::InstanceCheck(_) => Exception::type_error("the object is not a class"),
            _ => Exception::type_error("the service serves no objects"),
        };
        async { Err(error) }
    }

    /// Where the service runs when it computes long, so the sockets stay
    /// responsive meanwhile; `None` (the default): always on the
    /// connection's own task.
    fn executor(&self) -> Option<Executor> {
        None
    }
}

/// What a peer asks of an object of a service that serves its own objects.
#[derive(Clone, Debug, PartialEq)]
pub enum ObjectRequest {
    /// `obj.name`.
    GetAttr(String),
    /// `obj(*args, **kwargs)`, or `obj.method(*args, **kwargs)`.
    Call {
        /// The method, if one is named.
        method: Option<String>,
        /// Positional arguments.
        args: Vec<Value>,
        /// Keyword arguments.
        kwargs: Vec<(String, Value)>,
    },
    /// What the peer asks to know of the object.
    Describe(Description),
    /// `setattr(obj, name, value)`.
    SetAttr {
        /// The attribute.
        name: String,
        /// Its new value.
        value: Value,
    },
    /// `delattr(obj, name)`.
    DelAttr(String),
    /// `pickle.dumps(obj, protocol)`, a byte string.
    Pickle {
        /// The pickle protocol the peer reads.
        protocol: u32,
    },
    /// Up to this many items of an iterator, as a tuple.
    BuffIter(u32),
    /// The end of `with obj:`, told of the exception the block raised
    /// (`None` when it ended normally): `obj.__exit__`'s result.
    ExitContext(Value),
    /// `isinstance(instance, obj)`, `obj` being a class.
    InstanceCheck(Value),
}

/// What a peer asks to know of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Description {
    /// `repr(obj)`.
    Repr,
    /// `str(obj)`.
    Str,
    /// `hash(obj)`.
    Hash,
    /// `dir(obj)`.
    Dir,
    /// Its methods, as `(name, doc)` pairs (RPyC's INSPECT).
    Methods,
    /// The names of its exposed members that are called like methods.
    ExposedCallables,
}

impl Description {
    /// The name WIT's `description` enum gives it.
    pub fn wit_name(self) -> &'static str {
        match self {
            Description::Repr => "repr",
            Description::Str => "str",
            Description::Hash => "hash",
            Description::Dir => "dir",
            Description::Methods => "methods",
            Description::ExposedCallables => "exposed-callables",
        }
    }
}

/// RPyC's answer to pickling an object when its policy refuses it.
pub(crate) fn pickling_disabled() -> Exception {
    Exception::value_error("pickling is disabled")
}

/// The answer to reading items of an object that is not an iterator.
pub(crate) fn not_iterable() -> Exception {
    Exception::type_error("the object is not iterable")
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

/// Binds a call's positional then keyword arguments to the parameters of
/// `function` (their names, in order) as Python does: one slot per
/// parameter, `None` where none was given. Too many positional arguments, an
/// unknown keyword or a parameter given twice is a `TypeError`.
pub(crate) fn bind_arguments<'a>(
    function: &str,
    params: impl ExactSizeIterator<Item = &'a str> + Clone,
    args: Vec<Value>,
    kwargs: Vec<(String, Value)>,
) -> Result<Vec<Option<Value>>, Exception> {
    let count = params.len();
    if args.len() > count {
        return Err(Exception::type_error(format!(
            "{function}() takes {count} positional argument{} but {} were given",
            if count == 1 { "" } else { "s" },
            args.len()
        )));
    }
    let mut slots: Vec<Option<Value>> = args.into_iter().map(Some).collect();
    slots.resize(count, None);
    for (key, value) in kwargs {
        let Some(at) = params.clone().position(|param| param == key) else {
            return Err(Exception::type_error(format!(
                "{function}() got an unexpected keyword argument '{key}'"
            )));
        };
        if slots[at].replace(value).is_some() {
            return Err(Exception::type_error(format!(
                "{function}() got multiple values for argument '{key}'"
            )));
        }
    }
    Ok(slots)
}

/// The methods every root answers, as RPyC's `Service` does.
const ROOT_METHODS: [&str; 2] = ["get_service_name", "get_service_aliases"];

/// What a service exposes, read once per connection, so that names,
/// attributes and the methods every root has are answered without entering
/// the service (even while it waits on the peer).
#[derive(Debug)]
pub(crate) struct Exposed {
    aliases: Vec<String>,
    methods: Vec<String>,
    classes: HashMap<String, Vec<String>>,
    serves_objects: bool,
    serves_root: bool,
}

impl Exposed {
    /// What `service` exposes.
    pub(crate) fn of<S: Service>(service: &S) -> Self {
        Exposed {
            aliases: service.aliases().to_vec(),
            methods: service.exposed_names(),
            classes: service.exposed_classes().into_iter().collect(),
            serves_objects: service.serves_objects(),
            serves_root: service.serves_root(),
        }
    }

    /// Whether the service answers for its objects of unlisted classes
    /// itself.
    pub(crate) fn serves_objects(&self) -> bool {
        self.serves_objects
    }

    /// Whether the service answers for its root's other members itself.
    pub(crate) fn serves_root(&self) -> bool {
        self.serves_root
    }

    /// Whether `object` is one the service answers for itself (not an
    /// exposed class's instance).
    pub(crate) fn serves(&self, object: &ServiceObject) -> bool {
        self.serves_objects && !self.knows_class(&object.class)
    }

    /// Whether `class` is one of the exposed classes known here.
    pub(crate) fn knows_class(&self, class: &str) -> bool {
        self.classes.contains_key(class)
    }

    /// Reads the exposed classes of `service` again: a service whose
    /// classes come and go (the deploy service's) has new ones.
    pub(crate) fn update_classes<S: Service>(&mut self, service: &S) {
        self.classes.extend(service.exposed_classes());
    }

    /// The service's proper name.
    pub(crate) fn name(&self) -> &str {
        &self.aliases[0]
    }

    /// The member of the root `name` asks for (a method, a class or a method
    /// every root has), without the `exposed_` prefix, if the root has it.
    pub(crate) fn root_member<'a>(&self, name: &'a str) -> Option<&'a str> {
        let name = name.strip_prefix("exposed_").unwrap_or(name);
        let known = self.methods.iter().any(|m| m == name)
            || self.classes.contains_key(name)
            || ROOT_METHODS.contains(&name);
        known.then_some(name)
    }

    /// The error for a member the root does not have. A peer reaching for
    /// `deploy` is told where components are deployed.
    pub(crate) fn no_member(&self, name: &str) -> Exception {
        let mut error = Exception::no_attribute(name);
        if name.strip_prefix("exposed_").unwrap_or(name) == "deploy" {
            error.message = format!(
                "{}: {} takes no components; {}",
                error.message,
                self.name(),
                crate::well_known::where_to_deploy()
            );
        }
        error
    }

    /// Every member name of the root, sorted.
    pub(crate) fn root_members(&self) -> Vec<String> {
        let mut names = self.methods.clone();
        names.extend(self.classes.keys().cloned());
        names.extend(ROOT_METHODS.iter().map(|n| n.to_string()));
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The answer of a method every root has, when `member` is one and the
    /// service does not expose its own of that name.
    pub(crate) fn builtin(
        &self,
        member: &str,
        args: &[Value],
        kwargs: &[(String, Value)],
    ) -> Option<Result<Value, Exception>> {
        if !ROOT_METHODS.contains(&member) || self.methods.iter().any(|m| m == member) {
            return None;
        }
        if !args.is_empty() || !kwargs.is_empty() {
            return Some(Err(Exception::type_error(format!(
                "{member}() takes no arguments"
            ))));
        }
        Some(Ok(match member {
            "get_service_name" => Value::Str(self.aliases[0].clone()),
            _ => Value::Tuple(self.aliases.iter().cloned().map(Value::Str).collect()),
        }))
    }

    /// The exposed methods of `class`, sorted.
    pub(crate) fn class_methods(&self, class: &str) -> Vec<String> {
        let mut names = self.classes.get(class).cloned().unwrap_or_default();
        names.sort_unstable();
        names
    }

    /// The method of `class` that `name` asks for, without the `exposed_`
    /// prefix, if the class exposes it.
    pub(crate) fn class_method<'a>(&self, class: &str, name: &'a str) -> Option<&'a str> {
        let name = name.strip_prefix("exposed_").unwrap_or(name);
        let methods = self.classes.get(class)?;
        methods.iter().any(|m| m == name).then_some(name)
    }
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

    #[test]
    fn every_root_answers_its_name_and_hides_the_rest() {
        let exposed = Exposed::of(&VoidService::default());
        assert_eq!(
            exposed.builtin("get_service_name", &[], &[]),
            Some(Ok(Value::Str("VOID".into())))
        );
        let aliases = exposed.root_member("exposed_get_service_aliases").unwrap();
        assert_eq!(
            exposed.builtin(aliases, &[], &[]),
            Some(Ok(Value::Tuple(vec![Value::Str("VOID".into())])))
        );
        let err = exposed.builtin("get_service_name", &[Value::None], &[]);
        assert!(err.unwrap().unwrap_err().is("TypeError"));
        assert_eq!(exposed.root_member("add"), None);
        assert_eq!(
            exposed.root_members(),
            ["get_service_aliases", "get_service_name"]
        );
    }
}
