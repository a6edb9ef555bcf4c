"""RPyC's core inside a wasm-rpyc component: services and the protocol's
configuration (the host keeps the protocol itself)."""
