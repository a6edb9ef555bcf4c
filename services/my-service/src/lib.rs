//! The seed's `MyService`: aliases `foo`, `bar`, `spam`, and the exposed class
//! `MyClass(a, b)` whose `foo()` returns `a + b`.

wit_bindgen::generate!({
    path: ["../../wit", "../wit/my-service"],
    world: "example:my-service/my-service",
    with: {
        "wasm-rpyc:service/types@0.1.0": wasm_rpyc_guest::types,
        "wasm-rpyc:service/peer@0.1.0": wasm_rpyc_guest::peer,
    },
});

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use exports::example::my_service::classes::{
    ExposedMyClass, ExposedMyClassBorrow, Guest as Classes, GuestExposedMyClass,
};

/// Instances alive in this instance of the service.
static LIVE: AtomicU64 = AtomicU64::new(0);

/// Whether `on-connect` ran in this instance (one instance per connection).
static CONNECTED: AtomicBool = AtomicBool::new(false);

struct MyService;

/// The seed's `exposed_MyClass`.
struct MyClass {
    a: i64,
    b: i64,
}

impl GuestExposedMyClass for MyClass {
    fn new(a: i64, b: i64) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        MyClass { a, b }
    }

    fn exposed_foo(&self) -> i64 {
        self.a + self.b
    }

    fn exposed_add(&self, other: ExposedMyClassBorrow<'_>) -> ExposedMyClass {
        let other: &MyClass = other.get();
        ExposedMyClass::new(MyClass::new(self.a + other.a, self.b + other.b))
    }

    fn secret(&self) -> i64 {
        42
    }
}

impl Drop for MyClass {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Classes for MyService {
    type ExposedMyClass = MyClass;

    fn exposed_live_objects() -> u64 {
        LIVE.load(Ordering::Relaxed)
    }

    fn exposed_same(obj: ExposedMyClassBorrow<'_>, other: ExposedMyClassBorrow<'_>) -> bool {
        std::ptr::eq(obj.get::<MyClass>(), other.get::<MyClass>())
    }
}

impl Guest for MyService {
    fn service_aliases() -> Vec<String> {
        vec!["foo".into(), "bar".into(), "spam".into()]
    }

    fn on_connect() {
        CONNECTED.store(true, Ordering::Relaxed);
    }

    fn on_disconnect() {}

    fn exposed_connected() -> bool {
        CONNECTED.load(Ordering::Relaxed)
    }
}

export!(MyService);
