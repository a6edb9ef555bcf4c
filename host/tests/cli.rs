//! The `wasm-rpyc` command itself: serving a component file, a clean exit on
//! SIGTERM and SIGINT, and clear errors for a component it cannot serve and
//! for bad grants and limits.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// How long the server may take to start (compiling its components), or to
/// exit after a signal (a grace of 5 s for its connections): seconds, and
/// far more on a loaded machine. Only a server that never does waits it out.
const PATIENCE: Duration = Duration::from_secs(120);

use wasm_rpyc::bundled::EXAMPLES;

/// The bundled calculator written to a file, as a user would have it.
fn calculator_file(dir: &std::path::Path) -> std::path::PathBuf {
    let (_, _, bytes) = EXAMPLES
        .iter()
        .find(|(name, ..)| *name == "calculator")
        .unwrap();
    let file = dir.join("calculator.wasm");
    std::fs::write(&file, bytes).unwrap();
    file
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasm-rpyc-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `wasm-rpyc serve <files> --port 0` and returns it with the
/// addresses it logged, in order, and its further log lines.
fn serve(files: &[&std::path::Path]) -> (Child, Vec<String>, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasm-rpyc"))
        .args(["serve", "--port", "0"])
        .args(files)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (lines, log) = channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut addrs = Vec::new();
    while addrs.len() < files.len() {
        let line = log
            .recv_timeout(PATIENCE)
            .expect("the server logs that it is serving");
        if let Some((_, rest)) = line.split_once("serving") {
            let addr = rest.split("address=").nth(1).unwrap();
            addrs.push(addr.split_whitespace().next().unwrap().to_owned());
        }
    }
    (child, addrs, log)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(mut child: Child) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    while start.elapsed() < PATIENCE {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("the server did not exit");
}

#[test]
fn serves_a_component_file_and_exits_cleanly_on_signals() {
    let dir = temp_dir("serve");
    let file = calculator_file(&dir);
    for signal_name in ["TERM", "INT"] {
        let (child, addrs, log) = serve(&[&file]);
        let addr = &addrs[0];
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let conn = wasm_rpyc::connect(addr.as_str()).await.unwrap();
            assert_eq!(conn.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);
            assert_eq!(
                conn.root()
                    .call::<String>("get_service_name", ())
                    .await
                    .unwrap(),
                "CALCULATOR"
            );
            signal(&child, signal_name);
            let status = wait_exit(child);
            assert!(
                status.success(),
                "exit status after SIG{signal_name}: {status}"
            );
        });
        let rest: Vec<String> = log.iter().collect();
        assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn port_zero_gives_every_component_a_free_port_of_its_own() {
    let dir = temp_dir("ports");
    let file = calculator_file(&dir);
    let (mut child, addrs, _) = serve(&[&file, &file, &file]);
    let ports: Vec<u16> = addrs
        .iter()
        .map(|addr| addr.rsplit(':').next().unwrap().parse().unwrap())
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ports.iter().all(|&port| port >= 1024), "{ports:?}");
    assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_component_it_cannot_serve_is_a_clear_error() {
    let dir = temp_dir("bad");
    let junk = dir.join("junk.wasm");
    std::fs::write(&junk, b"not wasm").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_wasm-rpyc"))
        .args(["serve", "--port", "0"])
        .arg(&junk)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("junk cannot be compiled"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_grants_and_limits_are_clear_errors() {
    let dir = temp_dir("grants");
    let file = calculator_file(&dir);
    let missing = dir.join("missing");
    let cases: [(Vec<String>, &str); 9] = [
        (
            vec!["--dir".into(), "::/data".into()],
            "is not HOST::GUEST or HOST (with :ro to read only)",
        ),
        (vec!["--env".into(), "NOVALUE".into()], "is not KEY=VALUE"),
        (
            vec!["--dir".into(), format!("{}::/data", missing.display())],
            "cannot grant",
        ),
        (
            vec!["--env".into(), "A=b".into(), file.display().to_string()],
            "grant one service",
        ),
        (vec!["--cpu-budget".into(), "0".into()], "--cpu-budget"),
        (vec!["--call-timeout".into(), "0".into()], "--call-timeout"),
        (vec!["--max-frame".into(), "0".into()], "--max-frame"),
        (
            vec!["--shutdown-grace".into(), "x".into()],
            "--shutdown-grace",
        ),
        // The calculator's memory starts above 1 MiB: the flag takes effect.
        (vec!["--max-memory".into(), "1".into()], "exceeds the limit"),
    ];
    for (args, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_wasm-rpyc"))
            .args(["serve", "--port", "0"])
            .arg(&file)
            .args(&args)
            .env("RUST_BACKTRACE", "0")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_config_file_with_a_mistake_is_refused_naming_its_line() {
    let dir = temp_dir("config");
    calculator_file(&dir);
    let service = "[[service]]\ncomponent = \"calculator.wasm\"\nport = 0\n";
    let cases: [(String, &[&str]); 8] = [
        (
            format!("{service}max-conections = 3\n"),
            &["line 4", "unknown field `max-conections`"],
        ),
        (
            format!("{service}cpu-budget = -1\n"),
            &[
                "line 4",
                "-1 is not a positive number of seconds up to 31622400 (a year)",
            ],
        ),
        (
            format!("{service}max-frame = 5000\n"),
            &["line 4", "5000 MiB is not from 1 to 4095 MiB"],
        ),
        (
            format!("host = \"nowhere\"\n{service}"),
            &["line 1", "invalid IP address syntax"],
        ),
        (
            "\n[[service]]\ncomponent = \"missing.wasm\"\nport = 0\n".to_owned(),
            &[
                "services.toml:2: [[service]]: component: no file",
                "missing.wasm",
            ],
        ),
        (
            format!("{service}dirs = [\"::/data\"]\n"),
            &["services.toml:1: [[service]]: dirs", "is not HOST::GUEST"],
        ),
        (
            service.replace("port = 0", "port = 18999").repeat(2),
            &[
                "services.toml:4: port 18999 is also the port of",
                "services.toml:1",
            ],
        ),
        (
            "metrics = \"127.0.0.1:9464\"\n".to_owned(),
            &["declares no [[service]]"],
        ),
    ];
    let config = dir.join("services.toml");
    for (text, expected) in cases {
        std::fs::write(&config, &text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_wasm-rpyc"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_BACKTRACE", "0")
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(!output.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for expected in expected {
            assert!(stderr.contains(expected), "{text}: {stderr}");
        }
        assert!(!stderr.contains("serving"), "{text}: {stderr}");
    }
    // A component named beside the file is refused by the flags' parser.
    let output = Command::new(env!("CARGO_BIN_EXE_wasm-rpyc"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg(dir.join("calculator.wasm"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
    std::fs::remove_dir_all(dir).unwrap();
}
