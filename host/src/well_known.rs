//! Where a host's built-in services are found: the names and ports a peer
//! may assume, and the hint for a peer that looked in the wrong place.

/// The deploy service's port: RPyC classic mode's.
pub const DEPLOY_PORT: u16 = 18812;

/// The deploy service's name.
pub const DEPLOY_SERVICE: &str = "DEPLOY";

/// Where components are deployed, for a peer that looked elsewhere.
pub(crate) fn where_to_deploy() -> String {
    format!(
        "deploy to a host's {DEPLOY_SERVICE} service (`wasm-rpyc serve --allow-deploy`, port \
         {DEPLOY_PORT} by default)"
    )
}
