//! The registry with the Rust client: a served service registered, found by
//! name, connected to, then unregistered.

use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use wasm_rpyc::registry::{DEFAULT_PRUNING_TIMEOUT, Registrar, Registry, RegistryError, Transport};
use wasm_rpyc::{Error, connect_by_service};
use wasm_rpyc_tests::{SETTLE, calculator, runtime, serve};

/// A registry serving `transport` on a free local port, as a task.
async fn registry(transport: Transport) -> Registrar {
    let registry = Arc::new(Registry::new(DEFAULT_PRUNING_TIMEOUT, true));
    let addr = match transport {
        Transport::Udp => {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();
            tokio::spawn(registry.serve_udp(socket));
            addr
        }
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(registry.serve_tcp(listener));
            addr
        }
    };
    Registrar::new(transport, addr)
}

#[tokio::test]
async fn a_service_is_found_by_any_alias_and_connected_to_by_name() {
    for transport in [Transport::Udp, Transport::Tcp] {
        let registrar = registry(transport).await;
        let host = serve(calculator(&runtime()).await).await;
        let aliases = vec!["CALCULATOR".to_owned(), "CALC".to_owned()];
        registrar
            .register(&aliases, host.addr.port())
            .await
            .unwrap();
        assert_eq!(registrar.discover("calc").await.unwrap(), [host.addr]);

        let conn = connect_by_service("calculator", &registrar).await.unwrap();
        assert_eq!(conn.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);

        registrar.unregister(host.addr.port()).await.unwrap();
        let mut gone = false;
        let deadline = std::time::Instant::now() + SETTLE;
        while std::time::Instant::now() < deadline {
            // Over UDP the unregistration is not acknowledged: wait for it.
            match connect_by_service("calculator", &registrar).await {
                Err(Error::Registry(RegistryError::NotServed { name, .. })) => {
                    assert_eq!(name, "calculator");
                    gone = true;
                    break;
                }
                _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        assert!(gone, "{transport:?}: still registered after unregistering");
    }
}

#[tokio::test]
async fn no_registry_is_a_clear_error() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let registrar = Registrar::new(Transport::Udp, silent.local_addr().unwrap());
    let error = registrar.discover("calculator").await.unwrap_err();
    assert!(matches!(error, RegistryError::NoAnswer(_)), "{error}");
}

#[tokio::test]
async fn a_service_kept_registered_is_found_until_stopped_then_unregistered() {
    let registrar = registry(Transport::Tcp).await;
    let host = serve(calculator(&runtime()).await).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let keeping = {
        let (registrar, stop, port) = (registrar.clone(), stop.clone(), host.addr.port());
        tokio::spawn(async move {
            let aliases = || vec!["KEPT".to_owned()];
            registrar.keep_registered(aliases, port, stop).await;
        })
    };
    let deadline = std::time::Instant::now() + SETTLE;
    while registrar.discover("kept").await.is_err() {
        assert!(std::time::Instant::now() < deadline, "never registered");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(registrar.discover("kept").await.unwrap(), [host.addr]);
    stop.cancel();
    keeping.await.unwrap();
    assert!(
        matches!(
            registrar.discover("kept").await,
            Err(RegistryError::NotServed { .. })
        ),
        "unregistered when stopped"
    );
}
