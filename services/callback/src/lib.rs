//! The seed's callback `ServerService`: `bar(func)` returns `func() + "bar"`,
//! calling back the function the client passed.

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "example:callback/callback",
    with: {
        "wasm-rpyc:service/types@0.1.0": wasm_rpyc_guest::types,
        "wasm-rpyc:service/peer@0.1.0": wasm_rpyc_guest::peer,
    },
});

use wasm_rpyc_guest::peer;

struct ServerService;

impl Guest for ServerService {
    fn exposed_bar(func: Netref) -> Result<String, Error> {
        let result = peer::call(&func, Vec::new(), Vec::new())?;
        let foo = result
            .as_str()
            .ok_or_else(|| Error::new("TypeError", "func() did not return a str"))?;
        Ok(format!("{foo}bar"))
    }

    fn service_aliases() -> Vec<String> {
        vec!["server".into()]
    }
}

export!(ServerService);
