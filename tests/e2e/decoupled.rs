//! The seed's decoupled services with the Rust client: the client exposes a
//! native service, and the wasm service calls it back.

use wasm_rpyc::connection::Config;
use wasm_rpyc::{Exception, Service, ServiceComponent, Value, connect, connect_with};
use wasm_rpyc_tests::{example, runtime, serve};

/// The seed's `ClientService`: `foo()` returns `"foo"`.
struct ClientService {
    aliases: Vec<String>,
}

impl Service for ClientService {
    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn exposed_names(&self) -> Vec<String> {
        vec!["foo".into()]
    }

    async fn call(
        &mut self,
        _name: &str,
        _args: Vec<Value>,
        _kwargs: Vec<(String, Value)>,
    ) -> Result<Value, Exception> {
        Ok(Value::Str("foo".into()))
    }
}

async fn decoupled() -> ServiceComponent {
    example(&runtime(), "decoupled").await
}

#[tokio::test]
async fn the_service_calls_the_service_the_rust_client_exposes() {
    let host = serve(decoupled().await).await;
    let client = ClientService {
        aliases: vec!["CLIENT".into()],
    };
    let conn = connect_with(host.addr, client, Config::default())
        .await
        .unwrap();
    assert_eq!(
        conn.root().call::<String>("bar", ()).await.unwrap(),
        "foobar"
    );
    assert_eq!(
        conn.root()
            .call::<String>("get_service_name", ())
            .await
            .unwrap(),
        "SERVER"
    );

    let void = connect(host.addr).await.unwrap();
    let error = void.root().call::<String>("bar", ()).await.unwrap_err();
    assert_eq!(
        error.exception(),
        Some(&Exception::no_attribute("foo")),
        "{error}"
    );
}
