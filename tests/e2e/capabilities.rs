//! A service sees no files, environment variables or network unless the host
//! grants them, and a granted directory only within its bounds.

use wasm_rpyc::wasm::{DirGrant, Grants};
use wasm_rpyc::{Exception, connect};
use wasm_rpyc_tests::{SANDBOX, guest, runtime, serve};

fn os_error(result: Result<impl std::fmt::Debug, wasm_rpyc::Error>) -> Exception {
    let error = result.unwrap_err();
    let exception = error.exception().expect("a remote exception").clone();
    assert_eq!(exception.type_name, "OSError", "{exception}");
    exception
}

#[tokio::test]
async fn without_grants_a_service_reaches_nothing() {
    let host = serve(guest(&runtime(), SANDBOX).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    os_error(root.call::<String>("read_file", ("/etc/passwd",)).await);
    os_error(root.call::<String>("read_file", ("Cargo.toml",)).await);
    os_error(root.call::<()>("write_file", ("/tmp/escaped", "x")).await);
    os_error(root.call::<Vec<String>>("list_dir", ("/",)).await);
    assert_eq!(root.call::<u32>("env_count", ()).await.unwrap(), 0);
    assert_eq!(
        root.call::<Option<String>>("env", ("PATH",)).await.unwrap(),
        None
    );
    // A listening socket on this host, which the guest may not reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let refused = os_error(root.call::<()>("connect", (address,)).await);
    assert!(
        refused.message.contains("Permission denied"),
        "denied by policy, not unsupported: {refused}"
    );
}

#[tokio::test]
async fn a_granted_directory_is_seen_only_where_and_as_granted() {
    let outside = tempdir("outside");
    std::fs::write(outside.join("secret.txt"), "outside").unwrap();
    let data = outside.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "hello").unwrap();
    let scratch = tempdir("scratch");

    let grants = Grants::default()
        .dir(format!("{}::/data:ro", data.display()).parse().unwrap())
        .unwrap()
        .dir(DirGrant {
            host: scratch.clone(),
            guest: "/scratch".into(),
            read_only: false,
        })
        .unwrap()
        .env("GREETING", "hi");
    let component = guest(&runtime(), SANDBOX).await.with_grants(grants);
    let host = serve(component).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();

    let text: String = root.call("read_file", ("/data/hello.txt",)).await.unwrap();
    assert_eq!(text, "hello");
    let names: Vec<String> = root.call("list_dir", ("/data",)).await.unwrap();
    assert_eq!(names, ["hello.txt"]);
    os_error(root.call::<()>("write_file", ("/data/new.txt", "x")).await);
    assert!(!data.join("new.txt").exists(), "read-only means read-only");
    os_error(
        root.call::<String>("read_file", ("/data/../secret.txt",))
            .await,
    );
    os_error(root.call::<String>("read_file", ("/secret.txt",)).await);

    root.call::<()>("write_file", ("/scratch/out.txt", "written"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(scratch.join("out.txt")).unwrap(),
        "written"
    );
    assert_eq!(
        root.call::<Option<String>>("env", ("GREETING",))
            .await
            .unwrap(),
        Some("hi".into())
    );
    assert_eq!(root.call::<u32>("env_count", ()).await.unwrap(), 1);
    for dir in [outside, scratch] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// A fresh directory in the system's temporary directory, for one test.
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wasm-rpyc-test-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
