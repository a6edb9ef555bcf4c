//! A service written with `#[service]`: per-connection state behind `&mut
//! self`, both hooks, declared aliases, and each kind of parameter the
//! attribute maps.

use wasm_rpyc_guest::{Dynamic, Error, Netref, Value, peer, service};

/// Counts per connection: the instance, so the state, is the connection's own.
#[derive(Default)]
struct Tally {
    calls: u32,
    connected: bool,
}

#[service(aliases = ["tally", "counter"])]
impl Tally {
    fn on_connect(&mut self) -> Result<(), Error> {
        self.connected = true;
        Ok(())
    }

    fn on_disconnect(&mut self) {
        println!("disconnecting after {} calls", self.calls);
    }

    /// How many calls this connection made, this one included.
    fn exposed_count(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }

    fn exposed_connected(&self) -> bool {
        self.connected
    }

    /// `words` joined with `sep`, or with spaces.
    fn exposed_join(words: Vec<String>, sep: Option<String>) -> String {
        words.join(sep.as_deref().unwrap_or(" "))
    }

    fn exposed_pair(pair: (i32, char)) -> (char, i32) {
        (pair.1, pair.0)
    }

    /// `value` back, read and rebuilt as a `Dynamic` tree.
    fn exposed_echo(value: Value) -> Value {
        Value::from(Dynamic::from(value))
    }

    /// Calls `func(arg)` on the peer, borrowing the callback.
    fn exposed_apply(func: &Netref, arg: i64) -> Result<Value, Error> {
        peer::call(func, vec![arg.into()], Vec::new())
    }

    fn exposed_fail(type_name: String, message: String) -> Result<(), Error> {
        Err(Error::new(type_name, message))
    }

    /// Not exposed.
    #[allow(dead_code)]
    fn secret() -> u32 {
        7
    }
}
