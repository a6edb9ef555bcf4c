//! Components the host must refuse, with an error that says why.

use wasm_rpyc::ServiceComponent;
use wasm_rpyc::wasm::LoadError;
use wasm_rpyc_tests::{NOTHING_EXPOSED, runtime};

#[tokio::test]
async fn a_component_that_exposes_nothing_is_refused_naming_the_rule() {
    let result = ServiceComponent::load(&runtime(), std::path::Path::new(NOTHING_EXPOSED)).await;
    let Err(error) = result else {
        panic!("loaded a component with no exposed-* export")
    };
    assert!(matches!(error, LoadError::NothingExposed { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("exports no `exposed-*` function"),
        "{message}"
    );
    assert!(message.contains("exposed-<name>"), "{message}");
}

#[tokio::test]
async fn bytes_that_are_no_component_are_refused() {
    let error = ServiceComponent::from_bytes(&runtime(), "junk", b"\0asm not really")
        .await
        .err()
        .expect("junk must not load");
    assert!(
        error.to_string().starts_with("junk cannot be compiled"),
        "{error}"
    );
    let missing =
        ServiceComponent::load(&runtime(), std::path::Path::new("/nonexistent/x.wasm")).await;
    assert!(matches!(missing, Err(LoadError::Read { .. })));
}
