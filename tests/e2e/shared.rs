//! One instance for every connection (`ServiceComponent::shared`), with the
//! test guest and the Rust client: shared state, callbacks routed to the
//! connection that lent them, a gone peer, a trap followed by a fresh
//! instance, the queue's bounds and the refusal of a call that could only
//! re-enter the waiting instance.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use wasm_rpyc::wasm::CallQueue;
use wasm_rpyc::{Connection, Error, Exception, Function, ServiceComponent, Value, connect};
use wasm_rpyc_tests::{HeldCallback, Host, TESTBED, guest, runtime, serve};

async fn shared_testbed() -> Host {
    serve(guest(&runtime(), TESTBED).await.shared()).await
}

fn remote(result: Result<Value, Error>) -> Exception {
    match result {
        Err(Error::Remote(exception)) => exception,
        other => panic!("expected the service's exception, got {other:?}"),
    }
}

/// A callback that answers `answer` and tells `called` each time it is
/// called.
fn callback(answer: &'static str, called: Arc<Notify>) -> Function {
    Function::new(move |_| {
        called.notify_one();
        async move { Ok(Value::Str(answer.into())) }
    })
}

async fn counter(conn: &Connection) -> u32 {
    conn.root().call("counter", ()).await.unwrap()
}

#[tokio::test]
async fn every_connection_shares_the_instance_and_is_told_apart() {
    let host = shared_testbed().await;
    let (a, b) = (
        connect(host.addr).await.unwrap(),
        connect(host.addr).await.unwrap(),
    );
    assert_eq!(counter(&a).await, 1);
    assert_eq!(counter(&b).await, 2);
    assert_eq!(counter(&a).await, 3);
    let number = |conn: &Connection| {
        let root = conn.root();
        async move { root.call::<u64>("connection", ()).await.unwrap() }
    };
    let (first, second) = (number(&a).await, number(&b).await);
    assert!(first >= 1 && second >= 1 && first != second);
    assert_eq!(a.root().call::<u32>("connects", ()).await.unwrap(), 2);
    drop(b);
    let disconnected = async {
        while a.root().call::<u32>("disconnects", ()).await.unwrap() != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), disconnected)
        .await
        .expect("the second connection's on-disconnect ran in the shared instance");
}

#[tokio::test]
async fn a_callback_reaches_the_connection_that_lent_it_and_fails_once_it_is_gone() {
    let host = shared_testbed().await;
    let (a, b) = (
        connect(host.addr).await.unwrap(),
        connect(host.addr).await.unwrap(),
    );
    let called = Arc::new(Notify::new());
    let from_a = callback("from a", Arc::clone(&called));
    assert_eq!(a.root().call::<u32>("keep", (&from_a,)).await.unwrap(), 1);
    // B's call reaches A's callback, through A's connection.
    let answer: String = b.root().call("call_kept", (0, "x")).await.unwrap();
    assert_eq!(answer, "from a");
    // Without waiting: B's call returns before A answers.
    b.root()
        .call::<()>("call_kept_async", ("hello",))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), called.notified())
        .await
        .expect("the callback was called without waiting");
    a.close().await;
    drop(from_a);
    let started = Instant::now();
    let gone = remote(b.root().call("call_kept", (0, "x")).await);
    assert_eq!(gone.type_name, "EOFError", "{gone}");
    // At once, not after the half minute a call waits for the peer's reply
    // (the bound leaves a loaded machine seconds).
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failed at once"
    );
    let gone = remote(b.root().call("call_kept_async", ("hello",)).await);
    assert_eq!(gone.type_name, "EOFError", "{gone}");
}

#[tokio::test]
async fn a_trap_starts_a_fresh_instance_that_reconnects_every_connection() {
    let host = shared_testbed().await;
    let (a, b) = (
        connect(host.addr).await.unwrap(),
        connect(host.addr).await.unwrap(),
    );
    assert_eq!(counter(&a).await, 1);
    let trapped = remote(a.root().call("panic", ("boom",)).await);
    assert_eq!(trapped.type_name, "RuntimeError", "{trapped}");
    assert!(trapped.message.contains("boom"), "{trapped}");
    // A fresh instance: the count starts again, and both connections'
    // on-connect ran in it.
    assert_eq!(counter(&b).await, 1);
    assert_eq!(b.root().call::<u32>("connects", ()).await.unwrap(), 2);
    assert_eq!(counter(&a).await, 2);
}

#[tokio::test]
async fn calls_wait_their_turn_within_the_queues_bounds() {
    let mut queue = CallQueue::default();
    queue.max_calls = 1;
    // Long enough that two calls sent together reach the queue together
    // even on a loaded machine; a second waits this long, then times out.
    queue.timeout = Duration::from_secs(3);
    let component: ServiceComponent = guest(&runtime(), TESTBED).await.shared_with(queue);
    let host = serve(component).await;
    let mut conns = Vec::new();
    for _ in 0..3 {
        let conn = connect(host.addr).await.unwrap();
        // Joined: its first call waits for its on-connect.
        conn.root().call::<u64>("connection", ()).await.unwrap();
        conns.push(conn);
    }
    // The first connection's call holds the instance until the test lets
    // it go: it waits on a callback that tells the test it has begun (a
    // sleeping call would have to outlast a guess of how long the others
    // take to queue, which a loaded machine can exceed).
    let holding = HeldCallback::new(Value::Str("let go".into()));
    let holder = conns[0].root();
    let lent = holding.function.clone();
    let held =
        tokio::spawn(async move { holder.call::<String>("call_with", (&lent, &lent)).await });
    holding.entered().await;
    // Two calls at once: whichever comes first waits (one may), and times
    // out; the other is refused at once.
    let calls: Vec<_> = conns[1..]
        .iter()
        .map(|conn| {
            let root = conn.root();
            tokio::spawn(async move { root.call::<u32>("counter", ()).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for call in calls {
        outcomes.push(remote(call.await.unwrap().map(|_| Value::None)));
    }
    outcomes.sort_by(|a, b| a.type_name.cmp(&b.type_name));
    let [refused, timed_out] = &outcomes[..] else {
        unreachable!("two calls")
    };
    assert_eq!(refused.type_name, "RuntimeError", "{refused}");
    assert!(refused.message.contains("1 calls wait"), "{refused}");
    assert_eq!(timed_out.type_name, "TimeoutError", "{timed_out}");
    holding.release();
    assert_eq!(held.await.unwrap().unwrap(), "let go");
    assert_eq!(counter(&conns[2]).await, 1);
}

#[tokio::test]
async fn a_call_that_could_only_reenter_the_waiting_instance_is_refused_at_once() {
    let host = shared_testbed().await;
    let (a, b) = (
        connect(host.addr).await.unwrap(),
        connect(host.addr).await.unwrap(),
    );
    // A's callback calls the service back from A, while the instance waits
    // for A's answer to B's call.
    let root = a.root();
    let reenters = Function::new(move |_| {
        let root = root.clone();
        async move {
            let answer = match root.call::<u32>("counter", ()).await {
                Ok(count) => format!("entered: {count}"),
                Err(error) => format!("refused: {error}"),
            };
            Ok(Value::Str(answer))
        }
    });
    a.root().call::<u32>("keep", (&reenters,)).await.unwrap();
    let started = Instant::now();
    let answer: String = b.root().call("call_kept", (0, "x")).await.unwrap();
    assert!(answer.starts_with("refused: "), "{answer}");
    assert!(
        answer.contains("cannot be called from it until then"),
        "{answer}"
    );
    // At once, not after the half minute a call waits for its turn.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refused at once"
    );
    // Afterwards A calls the instance as usual.
    assert_eq!(counter(&a).await, 1);
}
