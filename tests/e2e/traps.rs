//! A guest that traps or runs away harms only its own connection, which gets
//! a fresh instance; the host and every other connection carry on.

use std::time::{Duration, Instant};

use wasm_rpyc::{Function, Limits, Runtime, Value, connect};
use wasm_rpyc_tests::{TESTBED, connect_patiently, guest, runtime, serve};

#[tokio::test]
async fn a_panic_is_an_exception_and_the_next_call_gets_a_fresh_instance() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    assert_eq!(root.call::<u32>("counter", ()).await.unwrap(), 1);
    assert_eq!(root.call::<u32>("counter", ()).await.unwrap(), 2);

    let error = root.call::<()>("panic", ("boom",)).await.unwrap_err();
    let e = error.exception().expect("a remote exception");
    assert_eq!(e.type_name, "RuntimeError");
    assert!(e.message.contains("the service trapped"), "{e}");
    assert!(
        e.message.contains("boom"),
        "the guest's panic message is kept: {e}"
    );

    assert_eq!(
        root.call::<u32>("counter", ()).await.unwrap(),
        1,
        "a fresh instance"
    );
    assert_eq!(
        root.call::<u32>("connects", ()).await.unwrap(),
        1,
        "on-connect ran in it"
    );
}

#[tokio::test]
async fn a_trapped_instance_gives_back_every_object_of_the_peers_it_held() {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let root = conn.root();
    let callback = Function::new(|_| async { Ok(Value::None) });
    for kept in 1..=3u32 {
        assert_eq!(root.call::<u32>("keep", (&callback,)).await.unwrap(), kept);
    }
    conn.ping().await.unwrap();
    assert_eq!(conn.lent_objects(), 3, "the instance keeps them");

    root.call::<()>("panic", ("boom",)).await.unwrap_err();
    conn.ping().await.unwrap(); // the releases follow the reply
    assert_eq!(conn.lent_objects(), 0, "released with the trapped instance");
    assert_eq!(root.call::<u32>("keep", (&callback,)).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_loop_is_stopped_at_its_cpu_budget_without_stalling_others() {
    let mut limits = Limits::default();
    limits.call_cpu_budget = Duration::from_millis(300);
    let runtime = Runtime::new(limits).unwrap();
    let host = serve(guest(&runtime, TESTBED).await).await;
    // The budget is CPU time, which a loaded machine hands the guests (at
    // the lowest priority) slowly: the spin may take far longer than 300 ms
    // of the clock, even past the client's default 30 s.
    let spinner = connect_patiently(host.addr).await;
    let other = connect(host.addr).await.unwrap();

    let started = Instant::now();
    let spin = tokio::spawn(async move {
        let result = spinner.root().call::<()>("spin", ()).await;
        (result, started.elapsed(), spinner)
    });
    // While the guest spins, another connection is served.
    for i in 0..20 {
        assert_eq!(other.root().call::<i32>("echo_s32", (i,)).await.unwrap(), i);
    }
    let (result, took, spinner) = spin.await.unwrap();
    let e = result.unwrap_err();
    let exception = e.exception().expect("a remote exception");
    assert_eq!(exception.type_name, "TimeoutError", "{e}");
    // Stopped by its CPU budget, not by the call's deadline (a minute of the
    // clock): the clock says nothing of the CPU a loaded machine gave it.
    assert!(exception.message.contains("used up its CPU budget"), "{e}");
    assert!(took >= Duration::from_millis(250), "stopped after {took:?}");
    assert_eq!(
        spinner.root().call::<i32>("echo_s32", (7,)).await.unwrap(),
        7
    );
}

/// Calls `name(arg)` expecting the exception `type_name` whose message has
/// `says`, then shows the connection and another one are served.
async fn contained(name: &str, arg: u64, type_name: &str, says: &str) {
    let host = serve(guest(&runtime(), TESTBED).await).await;
    let conn = connect(host.addr).await.unwrap();
    let other = connect(host.addr).await.unwrap();
    assert_eq!(other.root().call::<u32>("counter", ()).await.unwrap(), 1);
    let error = conn.root().call::<Value>(name, (arg,)).await.unwrap_err();
    let e = error.exception().expect("a remote exception");
    assert_eq!(e.type_name, type_name, "{name}: {e}");
    assert!(e.message.contains(says), "{name}: {e}");
    assert_eq!(conn.root().call::<i32>("echo_s32", (7,)).await.unwrap(), 7);
    assert_eq!(
        other.root().call::<u32>("counter", ()).await.unwrap(),
        2,
        "the other connection kept its instance"
    );
}

#[tokio::test]
async fn an_allocation_bomb_stops_at_the_memory_cap() {
    // 64 MiB per instance by default: a gibibyte cannot fit.
    contained(
        "allocate",
        1024,
        "MemoryError",
        "an instance may use 64 MiB",
    )
    .await;
}

#[tokio::test]
async fn unbounded_recursion_is_a_recursion_error() {
    contained("recurse", 1 << 40, "RecursionError", "overflowed its stack").await;
}

#[tokio::test]
async fn a_result_larger_than_a_frame_is_an_error_not_a_lost_connection() {
    // Frames are bounded at 16 MiB by default.
    contained("text_of", 20 << 20, "ValueError", "exceeds the limit").await;
}

#[tokio::test]
async fn a_list_too_large_to_convert_is_an_error() {
    // Each list item costs the host a `Val` while it converts: a guest may
    // hand over as many as the largest value (the largest frame, 16 MiB) and
    // no more.
    contained("bytes_of", 20 << 20, "RuntimeError", "too much data").await;
}
