//! The seed's callback `ServerService`: `bar(func)` returns `func() + "bar"`,
//! calling back the function the client passed.

use wasm_rpyc_guest::{Error, Netref, peer, service};

struct ServerService;

#[service]
impl ServerService {
    fn exposed_bar(func: Netref) -> Result<String, Error> {
        let result = peer::call(&func, Vec::new(), Vec::new())?;
        let foo = result
            .as_str()
            .ok_or_else(|| Error::new("TypeError", "func() did not return a str"))?;
        Ok(format!("{foo}bar"))
    }
}
