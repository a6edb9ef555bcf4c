//! A counter every connection shares: serve it with `wasm-rpyc serve
//! --shared`. The count is module-level state, shared by every connection;
//! the service value (`self`) is the connection's own.

use std::cell::Cell;

use wasm_rpyc_guest::{Error, service};

thread_local! {
    /// The count: one per instance, so one for every connection when shared.
    static COUNT: Cell<i64> = const { Cell::new(0) };
}

#[derive(Default)]
struct CounterService {
    /// How much this connection added.
    mine: i64,
}

#[service]
impl CounterService {
    /// Adds `n` to the shared count; the count after.
    fn exposed_increment(&mut self, n: i64) -> Result<i64, Error> {
        let count = COUNT.get().checked_add(n).ok_or_else(overflow)?;
        self.mine = self.mine.checked_add(n).ok_or_else(overflow)?;
        COUNT.set(count);
        Ok(count)
    }

    /// The shared count.
    fn exposed_value() -> i64 {
        COUNT.get()
    }

    /// How much this connection added.
    fn exposed_mine(&self) -> i64 {
        self.mine
    }
}

fn overflow() -> Error {
    Error::overflow("the count does not fit in 64 bits")
}
