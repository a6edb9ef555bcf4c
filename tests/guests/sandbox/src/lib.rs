//! A test guest that reaches for files, environment variables and the
//! network, to show what a service sees with and without grants.

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "test:sandbox/sandbox",
    with: {
        "wasm-rpyc:service/types@0.1.0": wasm_rpyc_guest::types,
        "wasm-rpyc:service/peer@0.1.0": wasm_rpyc_guest::peer,
    },
});

struct Sandbox;

fn os_error(error: std::io::Error) -> Error {
    Error::new("OSError", error.to_string())
}

impl Guest for Sandbox {
    fn exposed_read_file(path: String) -> Result<String, Error> {
        std::fs::read_to_string(path).map_err(os_error)
    }

    fn exposed_write_file(path: String, contents: String) -> Result<(), Error> {
        std::fs::write(path, contents).map_err(os_error)
    }

    fn exposed_list_dir(path: String) -> Result<Vec<String>, Error> {
        let mut names = std::fs::read_dir(path)
            .map_err(os_error)?
            .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(os_error)?;
        names.sort();
        Ok(names)
    }

    fn exposed_env(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    fn exposed_env_count() -> u32 {
        std::env::vars().count() as u32
    }

    fn exposed_connect(address: String) -> Result<(), Error> {
        std::net::TcpStream::connect(address)
            .map(drop)
            .map_err(os_error)
    }
}

export!(Sandbox);
