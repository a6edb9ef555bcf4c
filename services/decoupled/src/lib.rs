//! The seed's decoupled `ServerService`: `bar()` returns
//! `self._conn.root.foo() + "bar"`, calling the service the client exposes.

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "example:decoupled/decoupled",
    with: {
        "wasm-rpyc:service/types@0.1.0": wasm_rpyc_guest::types,
        "wasm-rpyc:service/peer@0.1.0": wasm_rpyc_guest::peer,
    },
});

use wasm_rpyc_guest::peer;

struct ServerService;

impl Guest for ServerService {
    fn exposed_bar() -> Result<String, Error> {
        let foo = peer::call_root("foo", Vec::new(), Vec::new())?;
        let foo = foo
            .as_str()
            .ok_or_else(|| Error::new("TypeError", "the client's foo() did not return a str"))?;
        Ok(format!("{foo}bar"))
    }

    fn service_aliases() -> Vec<String> {
        vec!["server".into()]
    }
}

export!(ServerService);
