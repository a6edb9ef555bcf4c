//! Bad input on the socket: each case ends in a closed connection or a clear
//! error, the host keeps serving everyone else, and nothing in the host panics.

use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasm_rpyc::protocol::native::{NativeCodec, PREAMBLE};
use wasm_rpyc::protocol::{Codec, Message, ROOT, Request};
use wasm_rpyc::{ServerConfig, Value, connect};
use wasm_rpyc_tests::{
    Host, SETTLE, TESTBED, calculator, connect_patiently, eventually, guest, runtime, serve_with,
};

/// Panics raised anywhere in the host's own code during these tests.
static HOST_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn watch_for_host_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info
                .location()
                .is_some_and(|l| l.file().contains("host/src"))
            {
                HOST_PANICS.lock().unwrap().push(info.to_string());
            }
            default(info);
        }));
    });
}

fn quick_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.hello_timeout = Duration::from_millis(300);
    config.connection.frame_timeout = Duration::from_millis(300);
    config.connection.max_frame = 64 * 1024;
    config.connection.max_queued_requests = 8;
    config
}

async fn hostile_host() -> Host {
    watch_for_host_panics();
    serve_with(calculator(&runtime()).await, quick_config()).await
}

/// Sends `bytes` and expects the host to close the connection at once, or
/// after its timeouts of 300 ms.
async fn closed_after(host: &Host, bytes: &[u8]) {
    let mut socket = TcpStream::connect(host.addr).await.unwrap();
    socket.write_all(bytes).await.unwrap();
    expect_closed(&mut socket).await;
}

/// Expects the host to close `socket`: its timeouts are 300 ms, but a
/// loaded machine may take seconds to act on them, and only a host that
/// keeps the connection waits out the 10 s.
async fn expect_closed(socket: &mut TcpStream) {
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut sink)).await;
    match read {
        Ok(Ok(_)) | Ok(Err(_)) => {}
        Err(_) => panic!("the host kept a misbehaving connection open"),
    }
}

/// A good client still gets answers, and the host's code never panicked.
async fn still_serving(host: &Host) {
    let conn = connect(host.addr).await.unwrap();
    assert_eq!(conn.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);
    let panics = HOST_PANICS.lock().unwrap();
    assert!(panics.is_empty(), "the host panicked: {panics:?}");
}

fn frame(message: &Message, with_preamble: bool) -> Vec<u8> {
    let mut codec = NativeCodec::new(1 << 20);
    let mut bytes = Vec::new();
    codec.encode(message, &mut bytes).unwrap();
    if with_preamble {
        bytes
    } else {
        bytes.split_off(PREAMBLE.len())
    }
}

fn add_request(seq: u32) -> Message {
    Message::Request {
        seq,
        request: Request::CallAttr {
            target: ROOT,
            name: "add".into(),
            args: vec![Value::Int(4), Value::Int(7)],
            kwargs: vec![],
        },
    }
}

/// A request whose frame is long: trickled a byte every 100 ms it takes
/// twenty seconds to send.
fn long_request() -> Message {
    Message::Request {
        seq: 0,
        request: Request::CallAttr {
            target: ROOT,
            name: "add".into(),
            args: vec![Value::Str("x".repeat(200)), Value::Int(7)],
            kwargs: vec![],
        },
    }
}

#[tokio::test]
async fn garbage_and_unknown_protocols_are_closed() {
    let host = hostile_host().await;
    closed_after(&host, b"GET / HTTP/1.1\r\n\r\n").await;
    closed_after(&host, &[0xff; 64]).await;
    closed_after(&host, b"wRPC\x07").await; // a future version
    let mut garbage = PREAMBLE.to_vec();
    garbage.extend_from_slice(&[0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef]);
    closed_after(&host, &garbage).await;
    still_serving(&host).await;
}

#[tokio::test]
async fn a_length_beyond_the_bound_is_refused_before_reading_it() {
    let host = hostile_host().await;
    let mut absurd = PREAMBLE.to_vec();
    absurd.extend_from_slice(&u32::MAX.to_be_bytes());
    closed_after(&host, &absurd).await;
    let mut just_over = PREAMBLE.to_vec();
    just_over.extend_from_slice(&(64 * 1024 + 1u32).to_be_bytes());
    closed_after(&host, &just_over).await;
    still_serving(&host).await;
}

#[tokio::test]
async fn values_nested_past_the_bound_are_refused() {
    let host = hostile_host().await;
    let mut nested = Value::Int(1);
    for _ in 0..1000 {
        nested = Value::Tuple(vec![nested]);
    }
    let message = Message::Request {
        seq: 1,
        request: Request::CallAttr {
            target: ROOT,
            name: "add".into(),
            args: vec![nested, Value::Int(1)],
            kwargs: vec![],
        },
    };
    closed_after(&host, &frame(&message, true)).await;
    still_serving(&host).await;
}

#[tokio::test]
async fn truncated_and_stalled_frames_end_the_connection() {
    let host = hostile_host().await;
    let whole = frame(&add_request(0), true);

    // Half a frame, then the client closes its side.
    let mut socket = TcpStream::connect(host.addr).await.unwrap();
    socket.write_all(&whole[..whole.len() - 3]).await.unwrap();
    socket.shutdown().await.unwrap();
    expect_closed(&mut socket).await;

    // Half a frame, then nothing: dropped after the frame timeout.
    let mut socket = TcpStream::connect(host.addr).await.unwrap();
    socket.write_all(&whole[..whole.len() - 3]).await.unwrap();
    expect_closed(&mut socket).await;

    // A frame trickled a byte at a time: the timeout is for the whole frame,
    // not each read. It is dropped after the frame timeout (300 ms), long
    // before the trickle could end (20 s): the bound leaves a loaded machine
    // seconds to act on the timeout.
    let long = frame(&long_request(), true);
    let mut socket = TcpStream::connect(host.addr).await.unwrap();
    socket.write_all(&long[..6]).await.unwrap();
    let started = Instant::now();
    let mut dropped = false;
    for byte in &long[6..long.len() - 1] {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if socket.write_all(&[*byte]).await.is_err() {
            dropped = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), socket.read(&mut probe)).await
        {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "a trickling client was kept for {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "dropped only after {:?}",
        started.elapsed()
    );

    // Nothing at all: dropped after the hello timeout.
    let mut silent = TcpStream::connect(host.addr).await.unwrap();
    expect_closed(&mut silent).await;
    still_serving(&host).await;
}

#[tokio::test]
async fn a_flood_of_requests_gets_busy_errors_not_unbounded_queues() {
    let host = hostile_host().await;
    let mut socket = TcpStream::connect(host.addr).await.unwrap();
    let mut flood = Vec::new();
    for seq in 0..200 {
        flood.extend(frame(&add_request(seq), seq == 0));
    }
    socket.write_all(&flood).await.unwrap();
    let mut codec = NativeCodec::new(1 << 20);
    let mut buf = Vec::new();
    let (mut answered, mut busy) = (0, 0);
    while answered + busy < 200 {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(SETTLE, socket.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(
            n > 0,
            "closed after {answered} answers and {busy} busy errors"
        );
        buf.extend_from_slice(&chunk[..n]);
        while let Some((message, used)) = codec.decode(&buf).unwrap() {
            buf.drain(..used);
            match message {
                Message::Reply {
                    result: Ok(Value::Int(11)),
                    ..
                } => answered += 1,
                Message::Reply { result: Err(e), .. }
                    if e.is("RuntimeError") && e.message.contains("too many") =>
                {
                    busy += 1
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(answered >= 8, "the queue's worth is served: {answered}");
    still_serving(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_mid_call_harms_no_one() {
    watch_for_host_panics();
    let mut limits = wasm_rpyc::Limits::default();
    limits.call_cpu_budget = Duration::from_millis(200);
    let runtime = wasm_rpyc::Runtime::new(limits).unwrap();
    let host = serve_with(guest(&runtime, TESTBED).await, quick_config()).await;
    let mut socket = TcpStream::connect(host.addr).await.unwrap();
    let spin = Message::Request {
        seq: 0,
        request: Request::CallAttr {
            target: ROOT,
            name: "spin".into(),
            args: vec![],
            kwargs: vec![],
        },
    };
    socket.write_all(&frame(&spin, true)).await.unwrap();
    drop(socket);
    let conn = connect(host.addr).await.unwrap();
    assert_eq!(conn.root().call::<i32>("echo_s32", (5,)).await.unwrap(), 5);
    // The vanished client's instance goes once its spin ends (cancelled, or
    // at its budget): wait for that rather than guess how long it takes.
    assert!(
        eventually(|| runtime.usage().instances <= 1).await,
        "the spinning instance outlived its client"
    );
    assert_eq!(conn.root().call::<i32>("echo_s32", (6,)).await.unwrap(), 6);
    assert!(HOST_PANICS.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_a_busy_one_is_not() {
    watch_for_host_panics();
    let mut limits = wasm_rpyc::Limits::default();
    limits.call_cpu_budget = Duration::from_millis(800);
    let runtime = wasm_rpyc::Runtime::new(limits).unwrap();
    let mut config = quick_config();
    config.connection.idle_timeout = Some(Duration::from_millis(300));
    let host = serve_with(guest(&runtime, TESTBED).await, config).await;

    // A call that keeps the service busy past the idle timeout is served
    // (its budget is CPU time, which a loaded machine hands the guests
    // slowly: the reply may come after the client's default 30 s).
    let busy = connect_patiently(host.addr).await;
    let error = busy.root().call::<()>("spin", ()).await.unwrap_err();
    assert!(
        error.exception().is_some_and(|e| e.is("TimeoutError")),
        "{error}"
    );
    assert_eq!(busy.root().call::<i32>("echo_s32", (3,)).await.unwrap(), 3);

    // One that then says nothing is closed (a half-open socket looks the
    // same): after 300 ms, and at once on an idle machine; a loaded one may
    // take longer to notice.
    assert!(
        eventually(|| busy.is_closed()).await,
        "the idle connection was not closed"
    );
    let mut silent = TcpStream::connect(host.addr).await.unwrap();
    silent.write_all(&PREAMBLE).await.unwrap();
    expect_closed(&mut silent).await;

    let conn = connect(host.addr).await.unwrap();
    assert_eq!(conn.root().call::<i32>("echo_s32", (4,)).await.unwrap(), 4);
}
