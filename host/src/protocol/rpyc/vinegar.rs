//! Exceptions as RPyC sends them (`rpyc/core/vinegar.py`): the brine tuple
//! `((module, class), args, attrs, traceback_text)`, or the int `1` for
//! `StopIteration`. A Python client rebuilds `builtins` classes as the real
//! exceptions and any other class as a generic one named `module.Class`.

use crate::exception::Exception;
use crate::value::Value;

/// rpyc's `EXC_STOP_ITERATION` shortcut.
const STOP_ITERATION: i128 = 1;

/// What the `_remote_version` attribute says: no version, so clients print
/// no version-mismatch warning.
const VERSION_DENIED: &str = "<version denied>";

/// What a traceback says when the sender withheld it.
const TRACEBACK_DENIED: &str = "<traceback denied>";

/// Dumps `exception` as the payload of an RPyC exception message.
pub fn dump(exception: &Exception) -> Value {
    if exception.type_name == "StopIteration" {
        return Value::Int(STOP_ITERATION);
    }
    let (module, class) = exception
        .type_name
        .rsplit_once('.')
        .unwrap_or(("builtins", &exception.type_name));
    let args = if exception.message.is_empty() {
        Vec::new()
    } else {
        vec![Value::Str(exception.message.clone())]
    };
    let traceback = exception
        .traceback
        .clone()
        .unwrap_or_else(|| format!("{exception}\n"));
    let str = |s: &str| Value::Str(s.to_owned());
    Value::Tuple(vec![
        Value::Tuple(vec![str(module), str(class)]),
        Value::Tuple(args),
        Value::Tuple(vec![Value::Tuple(vec![
            str("_remote_version"),
            str(VERSION_DENIED),
        ])]),
        Value::Str(traceback),
    ])
}

/// Loads the payload of an RPyC exception message. Anything that is not a
/// dumped exception is reported as a `ValueError` describing what came.
pub fn load(payload: Value) -> Exception {
    let unexpected = |what: &Value| {
        Exception::value_error(format!("the peer sent a malformed exception: {what}"))
    };
    let parts = match payload {
        Value::Int(STOP_ITERATION) => return Exception::stop_iteration(""),
        // Deprecated string exceptions.
        Value::Str(text) => return Exception::plain(text),
        Value::Tuple(parts) if parts.len() == 4 => parts,
        other => return unexpected(&other),
    };
    let [name, args, _attrs, traceback] = <[Value; 4]>::try_from(parts).expect("four parts");
    let type_name = match &name {
        Value::Tuple(pair) => match pair.as_slice() {
            [Value::Str(module), Value::Str(class)] if module == "builtins" => class.clone(),
            [Value::Str(module), Value::Str(class)] => format!("{module}.{class}"),
            _ => return unexpected(&name),
        },
        _ => return unexpected(&name),
    };
    let message = match args {
        Value::Tuple(args) => match args.as_slice() {
            [] => String::new(),
            [Value::Str(text)] => text.clone(),
            [one] => one.to_string(),
            _ => Value::Tuple(args).to_string(),
        },
        other => return unexpected(&other),
    };
    let mut exception = Exception::new(type_name, message);
    if let Value::Str(text) = traceback
        && text != TRACEBACK_DENIED
    {
        exception.traceback = Some(text);
    }
    exception
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::rpyc::brine;
    use crate::protocol::rpyc::vectors::Vectors;

    #[test]
    fn exceptions_of_the_real_rpyc_load_with_their_types_and_messages() {
        let loaded: Vec<Exception> = Vectors::load()
            .exceptions
            .into_iter()
            .map(|(value, bytes)| {
                assert_eq!(brine::decode(&bytes).as_ref(), Ok(&value));
                load(value)
            })
            .collect();
        let shown: Vec<String> = loaded.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "ZeroDivisionError: division by zero",
                "KeyError: k",
                "AttributeError: cannot access 'foo'",
                "__main__.Custom: ('custom', 42)",
                "ValueError: ",
                "StopIteration: ",
            ]
        );
        assert!(
            loaded.iter().all(|e| e.traceback.is_none()),
            "the generator denied tracebacks"
        );
    }

    #[test]
    fn dumped_exceptions_have_the_shape_rpyc_loads() {
        let dumped = dump(&Exception::new("ZeroDivisionError", "division by zero"));
        let mut bytes = Vec::new();
        brine::encode(&dumped, &mut bytes).unwrap();
        assert_eq!(load(brine::decode(&bytes).unwrap()), {
            let mut e = Exception::new("ZeroDivisionError", "division by zero");
            e.traceback = Some("ZeroDivisionError: division by zero\n".into());
            e
        });
        let custom = dump(&Exception::new("mymodule.sub.MyError", "x"));
        let Value::Tuple(parts) = custom else {
            panic!()
        };
        assert_eq!(
            parts[0],
            Value::Tuple(vec![
                Value::Str("mymodule.sub".into()),
                Value::Str("MyError".into())
            ])
        );
        assert_eq!(dump(&Exception::stop_iteration("")), Value::Int(1));
        assert!(load(Value::Int(5)).is("ValueError"));
    }
}
