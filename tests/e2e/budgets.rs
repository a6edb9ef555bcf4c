//! The host's budgets under abuse, at small scale with small limits: guest
//! memory, wall-clock time, connection slots, queued bytes, CPU and guest
//! output. Each attack fails the attacker's call with a clear error, and
//! everyone else carries on.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasm_rpyc::protocol::native::NativeCodec;
use wasm_rpyc::protocol::{Codec, Message, ROOT, Request};
use wasm_rpyc::wasm::EPOCH_TICK;
use wasm_rpyc::{Connection, Error, Limits, Runtime, ServerConfig, Value, connect};
use wasm_rpyc_tests::{
    PATIENCE, SETTLE, TESTBED, calculator, capture_logs, connect_patiently, eventually, guest,
    serve_with,
};

const MIB: usize = 1 << 20;

fn runtime_with(limits: Limits) -> Runtime {
    Runtime::new(limits).expect("the engine starts")
}

fn exception(error: Error) -> wasm_rpyc::Exception {
    error
        .exception()
        .cloned()
        .unwrap_or_else(|| panic!("a remote exception, not {error}"))
}

#[tokio::test]
async fn growth_past_the_hosts_memory_budget_is_a_memory_error() {
    let mut limits = Limits::default();
    limits.max_memory = 32 * MIB;
    limits.max_total_memory = 48 * MIB;
    let runtime = runtime_with(limits);
    let host = serve_with(guest(&runtime, TESTBED).await, ServerConfig::default()).await;
    let first = connect(host.addr).await.unwrap();
    let second = connect(host.addr).await.unwrap();

    // One instance past its own limit is told so.
    let error = exception(
        first
            .root()
            .call::<u32>("allocate", (40,))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.type_name, "MemoryError", "{error}");
    assert!(
        error.message.contains("an instance may use 32 MiB"),
        "{error}"
    );

    // Past the host's budget: the second guest's growth fails, as its call.
    assert_eq!(
        first.root().call::<u32>("allocate", (20,)).await.unwrap(),
        20
    );
    let error = exception(
        second
            .root()
            .call::<u32>("allocate", (30,))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.type_name, "MemoryError", "{error}");
    assert!(error.message.contains("48 MiB in all"), "{error}");
    assert!(runtime.memory_in_use() <= 48 * MIB);

    // Memory given back is there for others.
    first.close().await;
    let deadline = Instant::now() + SETTLE;
    let mut allocated = second.root().call::<u32>("allocate", (30,)).await.ok();
    while allocated.is_none() && Instant::now() < deadline {
        // The first connection's instance goes as its task ends.
        tokio::time::sleep(Duration::from_millis(20)).await;
        allocated = second.root().call::<u32>("allocate", (30,)).await.ok();
    }
    assert_eq!(allocated, Some(30));
    assert!(runtime.memory_in_use() <= 48 * MIB);
}

#[tokio::test]
async fn arguments_that_would_not_fit_in_the_budget_are_a_memory_error() {
    let mut limits = Limits::default();
    limits.max_total_memory = 48 * MIB;
    let runtime = runtime_with(limits);
    let host = serve_with(guest(&runtime, TESTBED).await, ServerConfig::default()).await;
    let conn = connect(host.addr).await.unwrap();
    // Each byte crosses into the guest as a dynamic value of its own.
    let big = Value::Bytes(vec![1; 4 * MIB]);
    let error = exception(
        conn.root()
            .call::<Value>("echo_bytes", (big,))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.type_name, "MemoryError", "{error}");
    assert!(error.message.contains("arguments would take"), "{error}");
    let small = Value::Bytes(vec![1; 1000]);
    let echoed: Value = conn
        .root()
        .call("echo_bytes", (small.clone(),))
        .await
        .unwrap();
    assert_eq!(echoed, small);
}

#[tokio::test]
async fn a_component_with_too_many_memories_is_refused_at_load() {
    // A small component that instantiates a module with a memory 8 times:
    // each instance could grow its memory to the per-instance limit.
    let instances: String = (0..8)
        .map(|i| format!("(core instance $i{i} (instantiate $m))"))
        .collect();
    let wat = format!(
        r#"(component
            (core module $m (memory 1) (func (export "f")))
            {instances}
            (func (export "exposed-f") (canon lift (core func $i0 "f"))))"#
    );
    let bytes = wat::parse_str(&wat).expect("valid text");
    let runtime = runtime_with(Limits::default());
    let error = wasm_rpyc::ServiceComponent::from_bytes(&runtime, "hog", &bytes)
        .await
        .err()
        .expect("refused");
    let error = error.to_string();
    assert!(error.contains("8 Wasm linear memories"), "{error}");
    assert!(error.contains("maximum of 4"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_deadline_fails_and_its_instance_goes() {
    let mut limits = Limits::default();
    limits.call_deadline = Duration::from_millis(300);
    let runtime = runtime_with(limits);
    let host = serve_with(guest(&runtime, TESTBED).await, ServerConfig::default()).await;
    let conn = connect(host.addr).await.unwrap();
    assert_eq!(conn.root().call::<u32>("counter", ()).await.unwrap(), 1);
    let started = Instant::now();
    let error = exception(
        conn.root()
            .call::<u32>("sleep", (60_000,))
            .await
            .unwrap_err(),
    );
    assert_eq!(error.type_name, "TimeoutError", "{error}");
    assert!(error.message.contains("deadline"), "{error}");
    // At the 300 ms deadline, not after the minute of the sleep (nor the
    // client's 30 s): a loaded machine may take seconds to act on it.
    assert!(started.elapsed() < Duration::from_secs(20));
    // A fresh instance: its counter starts again.
    assert_eq!(conn.root().call::<u32>("counter", ()).await.unwrap(), 1);
    assert_eq!(conn.root().call::<u32>("sleep", (10,)).await.unwrap(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_progress_is_cancelled_when_its_client_goes() {
    let runtime = runtime_with(Limits::default());
    let host = serve_with(guest(&runtime, TESTBED).await, ServerConfig::default()).await;
    let conn = connect(host.addr).await.unwrap();
    assert_eq!(conn.root().call::<u32>("counter", ()).await.unwrap(), 1);
    assert!(runtime.memory_in_use() > 0);
    let root = conn.root();
    let sleeping = tokio::spawn(async move { root.call::<u32>("sleep", (60_000,)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    sleeping.abort();
    conn.close().await;
    // The instance (and its memory) goes long before the sleep would end.
    assert!(
        eventually(|| runtime.memory_in_use() == 0).await,
        "the sleeping instance outlived its client"
    );
}

fn small_service() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.max_connections = 2;
    config.evict_idle_after = Duration::from_secs(3600);
    config
}

#[tokio::test]
async fn a_full_service_refuses_with_a_reason_while_others_serve() {
    let runtime = runtime_with(Limits::default());
    let full = serve_with(calculator(&runtime).await, small_service()).await;
    let other = serve_with(calculator(&runtime).await, small_service()).await;
    let (a, b) = (
        connect(full.addr).await.unwrap(),
        connect(full.addr).await.unwrap(),
    );
    for conn in [&a, &b] {
        assert_eq!(conn.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);
    }
    let refused = connect(full.addr).await.unwrap();
    let error = exception(refused.root().call::<i64>("add", (4, 7)).await.unwrap_err());
    assert_eq!(error.type_name, "RuntimeError", "{error}");
    assert!(
        error.message.contains("CALCULATOR is at capacity"),
        "{error}"
    );
    // Another service of the same host is not affected.
    let conn = connect(other.addr).await.unwrap();
    assert_eq!(conn.root().call::<i64>("add", (1, 2)).await.unwrap(), 3);
    // A slot given back is taken (once the host has seen the close: the
    // client's close does not wait for that).
    a.close().await;
    let mut sum = None;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        let conn = connect(full.addr).await.unwrap();
        match conn.root().call::<i64>("add", (1, 2)).await {
            Ok(added) => {
                sum = Some(added);
                break;
            }
            Err(error) => {
                assert!(exception(error).message.contains("at capacity"));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(sum, Some(3), "the slot given back is taken");
}

#[tokio::test]
async fn the_connection_idle_longest_makes_room() {
    let runtime = runtime_with(Limits::default());
    let mut config = small_service();
    config.evict_idle_after = Duration::from_millis(200);
    let host = serve_with(calculator(&runtime).await, config).await;
    let idle = connect(host.addr).await.unwrap();
    assert_eq!(idle.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let busy = connect(host.addr).await.unwrap();
    assert_eq!(busy.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);
    let newcomer = connect(host.addr).await.unwrap();
    assert_eq!(newcomer.root().call::<i64>("add", (1, 1)).await.unwrap(), 2);
    assert!(
        eventually(|| idle.is_closed()).await,
        "the idle connection made room"
    );
    assert_eq!(busy.root().call::<i64>("add", (2, 2)).await.unwrap(), 4);
}

#[tokio::test]
async fn one_address_cannot_take_every_slot() {
    let runtime = runtime_with(Limits::default());
    let mut config = ServerConfig::default();
    config.max_connections_per_ip = Some(3);
    let host = serve_with(calculator(&runtime).await, config).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let conn = connect(host.addr).await.unwrap();
        assert_eq!(conn.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);
        held.push(conn);
    }
    let fourth = connect(host.addr).await.unwrap();
    let refused = fourth.root().call::<i64>("add", (4, 7)).await.unwrap_err();
    assert!(matches!(refused, Error::Closed), "{refused}");
    held.pop().unwrap().close().await;
    // The address's count goes down once that connection has ended.
    let mut served = false;
    let deadline = Instant::now() + SETTLE;
    while Instant::now() < deadline {
        let conn = connect(host.addr).await.unwrap();
        if conn.root().call::<i64>("add", (1, 2)).await.ok() == Some(3) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "a slot given back is taken");
}

/// A native request for `echo_bytes(len bytes)`, framed (with the preamble
/// if `first`).
fn echo_request(seq: u32, len: usize, first: bool) -> Vec<u8> {
    let message = Message::Request {
        seq,
        request: Request::CallAttr {
            target: ROOT,
            name: "echo_bytes".into(),
            args: vec![Value::Bytes(vec![1; len])],
            kwargs: Vec::new(),
        },
    };
    let mut bytes = Vec::new();
    NativeCodec::new(64 * MIB)
        .encode(&message, &mut bytes)
        .unwrap();
    if first {
        bytes
    } else {
        bytes.split_off(wasm_rpyc::protocol::native::PREAMBLE.len())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_read_its_replies_is_no_longer_read() {
    let runtime = runtime_with(Limits::default());
    let mut config = ServerConfig::default();
    config.connection.max_queued_bytes = MIB;
    let host = serve_with(guest(&runtime, TESTBED).await, config).await;
    const CALLS: u32 = 200;
    const LEN: usize = 256 * 1024;
    let socket = TcpStream::connect(host.addr).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let sending = tokio::spawn(async move {
        for seq in 0..CALLS {
            writer
                .write_all(&echo_request(seq, LEN, seq == 0))
                .await
                .unwrap();
        }
        writer
    });
    // 50 MiB of requests, none of the replies read: once the budget is
    // spent the host stops reading, so the sender cannot finish.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !sending.is_finished(),
        "the host kept reading a peer that does not read"
    );
    let conn = connect(host.addr).await.unwrap();
    assert_eq!(conn.root().call::<i32>("echo_s32", (5,)).await.unwrap(), 5);

    // Once the peer reads, every reply comes: nothing was lost.
    let mut codec = NativeCodec::new(64 * MIB);
    let mut buf = Vec::new();
    let mut replies = 0;
    let mut chunk = vec![0; 1 << 16];
    // 50 MiB through the guest, a byte at a time: minutes on a loaded
    // machine at worst.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while replies < CALLS {
        let read = tokio::time::timeout_at(deadline, reader.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{replies} replies of {CALLS}"))
            .unwrap();
        assert!(read > 0, "closed after {replies} replies");
        buf.extend_from_slice(&chunk[..read]);
        while let Some((message, used)) = codec.decode(&buf).unwrap() {
            buf.drain(..used);
            let Message::Reply {
                result: Ok(Value::Bytes(bytes)),
                ..
            } = message
            else {
                panic!("an echo, not {message:?}");
            };
            assert_eq!(bytes.len(), LEN);
            replies += 1;
        }
    }
    sending.await.unwrap();
}

/// The median time of 50 short calls on `conn`.
async fn median_short_call(conn: &Connection) -> Duration {
    let mut took = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        assert_eq!(conn.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);
        took.push(started.elapsed());
    }
    took.sort();
    took[took.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_calls_do_not_starve_short_ones() {
    let mut limits = Limits::default();
    limits.guest_cores = 2;
    let runtime = runtime_with(limits);
    let burned = serve_with(guest(&runtime, TESTBED).await, ServerConfig::default()).await;
    let other = serve_with(calculator(&runtime).await, ServerConfig::default()).await;
    let conn = connect(other.addr).await.unwrap();
    assert_eq!(conn.root().call::<i64>("add", (1, 1)).await.unwrap(), 2);
    // The short calls alone first: what they take on this machine as it is
    // (tens of microseconds on an idle one; on a loaded one, milliseconds of
    // the scheduler's delays).
    let alone = median_short_call(&conn).await;
    let mut burners = Vec::new();
    for _ in 0..3 {
        let conn = connect(burned.addr).await.unwrap();
        burners.push(tokio::spawn(async move {
            conn.root().call::<u32>("work", (3000,)).await.unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Three guests burn CPU for 3 s of wall-clock time each, taking turns on
    // one core of the two (long calls get one fewer than all). Short calls
    // to another service are answered meanwhile, without waiting for a long
    // call's 10 ms slice: before the CPU turns, their median was tens of
    // milliseconds; now it is what it is without the long calls. A loaded
    // machine adds its own delays to both medians alike, so the long calls
    // are held to adding less than one of their slices, not to a bound of
    // the clock.
    let beside = median_short_call(&conn).await;
    assert!(
        burners.iter().all(|burner| !burner.is_finished()),
        "the short calls waited for the long ones"
    );
    assert!(
        beside < alone + EPOCH_TICK,
        "the median short call took {beside:?} beside the long calls, {alone:?} alone"
    );
    for burner in burners {
        assert_eq!(burner.await.unwrap(), 3000);
    }
}

/// The CPU time this process's threads named `name` have used, and their
/// nice values (Linux's /proc).
#[cfg(target_os = "linux")]
fn threads_named(name: &str) -> (Duration, Vec<i64>) {
    let mut ticks = 0;
    let mut niceness = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The fields after the name: state is the third field, utime the
        // 14th, stime the 15th, nice the 19th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        if fields.len() < 17 {
            // The thread ended as it was read (another test's runtime).
            continue;
        }
        let field = |n: usize| fields[n - 3].parse::<i64>().unwrap();
        ticks += field(14) + field(15);
        niceness.push(field(19));
    }
    // Linux counts in clock ticks of 10 ms (USER_HZ).
    (Duration::from_millis(10 * ticks as u64), niceness)
}

#[test]
#[cfg(target_os = "linux")]
fn a_guest_computing_runs_off_the_sockets_threads_at_low_priority() {
    // Its blocking threads (which compile the guest) have the name too: kept
    // alive through a spin of seconds, their CPU time stays in both counts
    // rather than leave the second as an idle one ends.
    let sockets = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("budget-sockets")
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .unwrap();
    sockets.block_on(async {
        // A fifth of a second of CPU time, whatever the machine's load: the
        // guest spins until its budget (CPU time, on the guest threads) is
        // spent. A loop for a time of the clock would get little CPU on a
        // busy machine, at the guest threads' lowest priority; this one
        // takes as long of the clock as it must (seconds, then: the client
        // waits patiently).
        let mut limits = Limits::default();
        limits.call_cpu_budget = Duration::from_millis(200);
        let runtime = runtime_with(limits);
        let host = serve_with(guest(&runtime, TESTBED).await, ServerConfig::default()).await;
        let conn = connect_patiently(host.addr).await;
        assert_eq!(conn.root().call::<i32>("echo_s32", (7,)).await.unwrap(), 7);
        let (before, _) = threads_named("budget-sockets");
        // After its first slice (one epoch tick, 10 ms) the call moves to the
        // guest threads.
        let error = exception(conn.root().call::<()>("spin", ()).await.unwrap_err());
        assert!(error.message.contains("used up its CPU budget"), "{error}");
        let (after, _) = threads_named("budget-sockets");
        assert!(
            after - before < Duration::from_millis(150),
            "the sockets' threads computed for {:?}",
            after - before
        );
        // The guest threads, at nice 19, did the computing: all of the
        // budget but the first slice.
        let (computed, niceness) = threads_named("wasm-rpyc-guest");
        assert!(
            computed >= Duration::from_millis(100) && computed > 2 * (after - before),
            "the guest threads computed for {computed:?}"
        );
        assert!(
            !niceness.is_empty() && niceness.iter().all(|&nice| nice == 19),
            "{niceness:?}"
        );
    });
}

#[tokio::test]
async fn a_flood_of_guest_output_is_cut() {
    let logs = capture_logs();
    let runtime = runtime_with(Limits::default());
    let host = serve_with(guest(&runtime, TESTBED).await, ServerConfig::default()).await;
    let conn = connect(host.addr).await.unwrap();
    let width = 1000;
    conn.root()
        .call::<()>("shout", (10_000, width))
        .await
        .unwrap();
    logs.wait_for("output dropped").await;
    let logged = logs.count(&"!".repeat(width as usize));
    let most = wasm_rpyc::wasm::MAX_OUTPUT_PER_CALL / width as usize;
    assert!(logged <= most + 1, "{logged} lines logged of 10,000");
    assert!(logged >= most / 2, "{logged} lines logged");
    assert_eq!(logs.count("output dropped"), 1);
}

#[tokio::test]
async fn a_twelve_mib_byte_string_round_trips() {
    let runtime = runtime_with(Limits::default());
    let host = serve_with(guest(&runtime, TESTBED).await, ServerConfig::default()).await;
    // 24 MiB through the guest take a second of a core; a loaded machine
    // hands the guest threads (at the lowest priority) far less than that,
    // and the reply may come after the client's default 30 s.
    let conn = connect_patiently(host.addr).await;
    assert_eq!(conn.root().call::<u32>("counter", ()).await.unwrap(), 1);
    let sent: Vec<u8> = (0..12 * MIB).map(|i| i as u8).collect();
    let back: Value = conn
        .root()
        .call("echo_bytes", (Value::Bytes(sent.clone()),))
        .await
        .unwrap();
    assert_eq!(back, Value::Bytes(sent));
    let made: Value = conn
        .root()
        .call("bytes_of", (12 * MIB as u32,))
        .await
        .unwrap();
    assert!(matches!(made, Value::Bytes(b) if b.len() == 12 * MIB));
    // The same instance: nothing trapped.
    assert_eq!(conn.root().call::<u32>("counter", ()).await.unwrap(), 2);
}
