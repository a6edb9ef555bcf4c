//! Sandboxed classic mode: a peer hands the DEPLOY service a component's
//! bytes and calls the root it gets back; the deployed service runs under the
//! host's limits, is cached by content, and ends when let go.

use std::time::{Duration, Instant};

use wasm_rpyc::deploy::{DeployLimits, Deployer, deploy, deploy_as};
use wasm_rpyc::{Error, Function, Limits, RemoteObject, Runtime, ServerConfig, Value, connect};
use wasm_rpyc_tests::{
    NOTHING_EXPOSED, SETTLE, TESTBED, calculator, capture_logs, connect_patiently, polyglot,
    runtime, serve, serve_with,
};

fn testbed_bytes() -> Vec<u8> {
    std::fs::read(TESTBED).expect("the test guest is built")
}

fn remote_error(error: Error) -> wasm_rpyc::Exception {
    error
        .exception()
        .cloned()
        .unwrap_or_else(|| panic!("a remote exception, not {error}"))
}

#[tokio::test]
async fn a_deployed_component_is_called_through_the_root_it_returns() {
    let deployer = Deployer::new(runtime(), DeployLimits::default());
    let host = serve(deployer.clone()).await;
    let conn = connect(host.addr).await.unwrap();
    assert_eq!(
        conn.root()
            .call::<String>("get_service_name", ())
            .await
            .unwrap(),
        "DEPLOY"
    );

    let testbed = deploy(&conn, testbed_bytes()).await.unwrap();
    assert_eq!(testbed.call::<i32>("echo_s32", (5,)).await.unwrap(), 5);
    assert_eq!(
        testbed
            .call::<String>("get_service_name", ())
            .await
            .unwrap(),
        "TESTBED"
    );
    assert_eq!(
        testbed.call::<i32>("twice", (21,)).await.unwrap(),
        42,
        "interface members too"
    );
    assert!(
        testbed.class().starts_with("TESTBED@"),
        "{}",
        testbed.class()
    );
    assert_eq!(
        testbed.call::<u32>("connects", ()).await.unwrap(),
        1,
        "on-connect ran"
    );
    let error = testbed.call::<i32>("hidden", ()).await.unwrap_err();
    assert_eq!(remote_error(error).type_name, "AttributeError");

    // A callback reaches the deploying peer.
    let hello = Function::new(|_| async { Ok(Value::Str("hello".into())) });
    let probe = Function::new(|args| async move { Ok(Value::Bool(args.is_empty())) });
    let called: Value = testbed.call("call_with", (&hello, &probe)).await.unwrap();
    assert_eq!(called, Value::Str("hello".into()));

    // The same bytes again, from another connection: compiled once, a
    // separate instance.
    let other = connect(host.addr).await.unwrap();
    let second = deploy(&other, testbed_bytes()).await.unwrap();
    assert_eq!(testbed.call::<u32>("counter", ()).await.unwrap(), 1);
    assert_eq!(testbed.call::<u32>("counter", ()).await.unwrap(), 2);
    assert_eq!(second.call::<u32>("counter", ()).await.unwrap(), 1);
    assert_eq!(deployer.cached_components(), 1);

    let calc_bytes = wasm_rpyc::bundled::EXAMPLES
        .iter()
        .find(|(name, ..)| *name == "calculator")
        .map(|(_, _, bytes)| bytes.to_vec())
        .expect("the calculator is bundled");
    let calc = deploy(&conn, calc_bytes).await.unwrap();
    assert_eq!(calc.call::<i64>("add", (4, 7)).await.unwrap(), 11);
    assert_eq!(deployer.cached_components(), 2);
}

#[tokio::test]
async fn a_deployed_services_objects_stay_its_own() {
    let host = serve(Deployer::new(runtime(), DeployLimits::default())).await;
    let conn = connect(host.addr).await.unwrap();
    let bytes = wasm_rpyc::bundled::EXAMPLES
        .iter()
        .find(|(name, ..)| *name == "my-service")
        .map(|(_, _, bytes)| bytes.to_vec())
        .expect("my-service is bundled");
    let first = deploy(&conn, bytes.clone()).await.unwrap();
    let second = deploy(&conn, bytes).await.unwrap();
    let one: RemoteObject = first.call("MyClass", (1, 2)).await.unwrap();
    let two: RemoteObject = first.call("MyClass", (10, 20)).await.unwrap();
    assert!(one.class().starts_with("MyClass@"), "{}", one.class());
    assert_eq!(one.call::<i64>("foo", ()).await.unwrap(), 3);
    let sum: RemoteObject = one.call("add", (&two,)).await.unwrap();
    assert_eq!(sum.call::<i64>("foo", ()).await.unwrap(), 33);
    assert!(first.call::<bool>("same", (&one, &one)).await.unwrap());
    assert_eq!(first.call::<u64>("live_objects", ()).await.unwrap(), 3);

    // Another deployment's object, or a root, is not this one's to take.
    let theirs: RemoteObject = second.call("MyClass", (1, 1)).await.unwrap();
    let error = first
        .call::<bool>("same", (&one, &theirs))
        .await
        .unwrap_err();
    let e = remote_error(error);
    assert_eq!(e.type_name, "TypeError");
    assert!(
        e.message.contains("not an object of this deployed service"),
        "{e}"
    );
    let error = first
        .call::<bool>("same", (&one, &second))
        .await
        .unwrap_err();
    assert_eq!(remote_error(error).type_name, "TypeError");

    // Releasing an object reaches its service's destructor.
    drop((two, sum));
    let deadline = Instant::now() + SETTLE;
    while first.call::<u64>("live_objects", ()).await.unwrap() != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(first.call::<u64>("live_objects", ()).await.unwrap(), 1);
}

#[tokio::test]
async fn a_deployment_ends_when_the_peer_lets_go_of_it() {
    let logs = capture_logs();
    let mut limits = DeployLimits::default();
    limits.max_deployments = 1;
    let host = serve(Deployer::new(runtime(), limits)).await;
    let conn = connect(host.addr).await.unwrap();
    let testbed = deploy(&conn, testbed_bytes()).await.unwrap();
    testbed
        .call::<()>("set_tag", ("deploy-ends",))
        .await
        .unwrap();

    let error = deploy(&conn, testbed_bytes()).await.unwrap_err();
    let e = remote_error(error);
    assert_eq!(e.type_name, "RuntimeError");
    assert!(e.message.contains("holds 1 deployed services"), "{e}");

    drop(testbed);
    // The peer is still there: its root answers (it has no `foo`).
    let ended = "on-disconnect deploy-ends (peer call: AttributeError";
    logs.wait_for(ended).await;
    assert_eq!(logs.count(ended), 1, "on-disconnect ran once");
    let again = deploy(&conn, testbed_bytes()).await.unwrap();
    assert_eq!(again.call::<i32>("echo_s32", (1,)).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_deployed_component_is_contained() {
    let mut limits = Limits::default();
    limits.call_cpu_budget = Duration::from_millis(300);
    limits.max_memory = 32 << 20;
    let host = serve(Deployer::new(
        Runtime::new(limits).unwrap(),
        DeployLimits::default(),
    ))
    .await;
    // The spin runs past its budget of CPU time, which a loaded machine
    // hands the guests (at the lowest priority) slowly: its reply may come
    // after the client's default 30 s.
    let conn = connect_patiently(host.addr).await;
    let bad = deploy(&conn, testbed_bytes()).await.unwrap();
    let bystander_conn = connect(host.addr).await.unwrap();
    let bystander = deploy(&bystander_conn, testbed_bytes()).await.unwrap();

    let spinning = bad.clone();
    let spin = tokio::spawn(async move { spinning.call::<()>("spin", ()).await });
    for i in 0..10 {
        assert_eq!(bystander.call::<i32>("echo_s32", (i,)).await.unwrap(), i);
    }
    assert_eq!(
        remote_error(spin.await.unwrap().unwrap_err()).type_name,
        "TimeoutError"
    );
    let error = bad.call::<u32>("allocate", (64,)).await.unwrap_err();
    assert_eq!(remote_error(error).type_name, "MemoryError");
    let error = bad.call::<u64>("recurse", (u64::MAX,)).await.unwrap_err();
    assert_eq!(remote_error(error).type_name, "RecursionError");
    let error = bad.call::<()>("panic", ("deployed",)).await.unwrap_err();
    assert!(remote_error(error).message.contains("deployed"));

    // Each time the deployment got a fresh instance; the host goes on.
    assert_eq!(bad.call::<i32>("echo_s32", (7,)).await.unwrap(), 7);
    assert_eq!(bystander.call::<u32>("counter", ()).await.unwrap(), 1);
    let more = deploy(&conn, testbed_bytes()).await.unwrap();
    assert_eq!(more.call::<i32>("echo_s32", (8,)).await.unwrap(), 8);
}

#[tokio::test]
async fn the_host_runs_at_most_its_share_of_deployments() {
    let mut limits = DeployLimits::default();
    limits.max_total_deployments = 1;
    let host = serve(Deployer::new(runtime(), limits)).await;
    let (first, second) = (
        connect(host.addr).await.unwrap(),
        connect(host.addr).await.unwrap(),
    );
    let deployed = deploy(&first, testbed_bytes()).await.unwrap();
    let error = remote_error(deploy(&second, testbed_bytes()).await.unwrap_err());
    assert_eq!(error.type_name, "RuntimeError", "{error}");
    assert!(error.message.contains("DEPLOY is at capacity"), "{error}");
    drop(deployed);
    // Its place is given back once the first peer lets go of it.
    let deadline = Instant::now() + SETTLE;
    let mut again = deploy(&second, testbed_bytes()).await.ok();
    while again.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        again = deploy(&second, testbed_bytes()).await.ok();
    }
    assert!(again.is_some(), "the deployment's place came back");
}

#[tokio::test]
async fn the_compile_cache_keeps_to_its_bytes() {
    let runtime = runtime();
    let testbed_size = wasm_rpyc_tests::guest(&runtime, TESTBED)
        .await
        .compiled_size();
    let mut limits = DeployLimits::default();
    limits.cache_bytes = testbed_size + 1;
    let deployer = Deployer::new(runtime, limits);
    let host = serve(deployer.clone()).await;
    let conn = connect(host.addr).await.unwrap();
    let testbed = deploy(&conn, testbed_bytes()).await.unwrap();
    assert_eq!(deployer.cached_components(), 1);
    assert_eq!(deployer.cached_bytes(), testbed_size);
    let calc_bytes = wasm_rpyc::bundled::EXAMPLES
        .iter()
        .find(|(name, ..)| *name == "calculator")
        .map(|(_, _, bytes)| bytes.to_vec())
        .unwrap();
    let calculator = deploy(&conn, calc_bytes).await.unwrap();
    // Both do not fit: the least recently deployed went.
    assert_eq!(deployer.cached_components(), 1);
    assert!(deployer.cached_bytes() <= testbed_size + 1);
    // Deployed services stay up whatever the cache holds.
    assert_eq!(testbed.call::<i32>("echo_s32", (3,)).await.unwrap(), 3);
    assert_eq!(calculator.call::<i64>("add", (4, 7)).await.unwrap(), 11);
}

#[tokio::test]
async fn what_cannot_be_deployed_is_refused_clearly() {
    let mut limits = DeployLimits::default();
    limits.max_component_size = 1 << 20;
    let deployer = Deployer::new(runtime(), limits);
    let host = serve(deployer.clone()).await;
    let conn = connect(host.addr).await.unwrap();

    let e = remote_error(deploy(&conn, b"not wasm".to_vec()).await.unwrap_err());
    assert_eq!(e.type_name, "ValueError");
    assert!(e.message.contains("cannot be compiled"), "{e}");

    let nothing = std::fs::read(NOTHING_EXPOSED).unwrap();
    let e = remote_error(deploy(&conn, nothing).await.unwrap_err());
    assert!(e.message.contains("exports no `exposed-*` function"), "{e}");

    let e = remote_error(deploy(&conn, vec![0; 2 << 20]).await.unwrap_err());
    assert_eq!(e.type_name, "ValueError");
    assert!(e.message.contains("at most 1048576 bytes"), "{e}");

    let error = conn
        .root()
        .call::<RemoteObject>("deploy", ("text",))
        .await
        .unwrap_err();
    let e = remote_error(error);
    assert_eq!(e.type_name, "TypeError");
    assert!(e.message.contains("the component's bytes"), "{e}");
    let misnamed = (Value::Bytes(testbed_bytes()), Value::Bytes(testbed_bytes()));
    let three = (Value::Bytes(testbed_bytes()), "a", "b");
    for error in [
        conn.root()
            .call::<RemoteObject>("deploy", misnamed)
            .await
            .unwrap_err(),
        conn.root()
            .call::<RemoteObject>("deploy", three)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(remote_error(error).type_name, "TypeError");
    }
    let e = remote_error(
        conn.root()
            .call_kw::<RemoteObject>("deploy", (), [("version", Value::Int(2))])
            .await
            .unwrap_err(),
    );
    assert!(
        e.message.contains("unexpected keyword argument 'version'"),
        "{e}"
    );
    assert_eq!(deployer.cached_components(), 0, "failures are not cached");

    // A service that is not the deploy service says so.
    let calculator_host = serve(calculator(&runtime()).await).await;
    let conn = connect(calculator_host.addr).await.unwrap();
    match deploy(&conn, testbed_bytes()).await {
        Err(error @ Error::NotDeployService(_)) => assert_eq!(
            error.to_string(),
            "CALCULATOR takes no components; deploy to a host's DEPLOY service \
             (`wasm-rpyc serve --allow-deploy`, port 18812 by default)"
        ),
        other => panic!("refused as not the deploy service, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_component_is_deployed_from_rust_while_others_wait_their_turn() {
    let mut limits = DeployLimits::default();
    limits.concurrent_compiles = 1;
    limits.queued_compiles = 0;
    let mut config = ServerConfig::default();
    config.connection.max_frame = limits.max_frame();
    let deployer = Deployer::new(runtime(), limits.clone());
    let host = serve_with(deployer.clone(), config).await;
    let bytes = std::fs::read(polyglot("python", "calculator"))
        .expect("services/build.sh made the Python calculator");
    assert!(
        bytes.len() > 16 << 20,
        "larger than a plain connection's frames"
    );
    // Frames large enough for it (as `deploy::connect` sends), and calls
    // that wait for a compile of many seconds, minutes on a loaded machine
    // (the client's default is 30 s).
    let conn = connect_patiently(host.addr).await;
    let start_compiling = || {
        let (conn, bytes) = (conn.clone(), bytes.clone());
        tokio::spawn(async move { deploy(&conn, bytes).await })
    };
    let mut compiling = start_compiling();
    // A Python component compiles for seconds: meanwhile, with one compile
    // at a time and none waiting, another deploy is refused at once. Wait
    // until the compile holds its turn (sending and hashing 18 MB take a
    // while on a loaded machine) rather than guess how long that takes: a
    // probe that is not a component takes the turn for an instant while it
    // is free (and fails as not compilable), and is refused once the
    // compile holds it.
    let other = connect_patiently(host.addr).await;
    let deadline = Instant::now() + SETTLE;
    loop {
        let probe = remote_error(deploy(&other, b"not wasm".to_vec()).await.unwrap_err());
        if probe.message.contains("DEPLOY is at capacity") {
            break;
        }
        assert_eq!(probe.type_name, "ValueError", "{probe}");
        if compiling.is_finished() {
            // The component came while a probe held the turn, and was
            // refused for it: send it again.
            let refused = remote_error(compiling.await.unwrap().unwrap_err());
            assert!(
                refused.message.contains("DEPLOY is at capacity"),
                "{refused}"
            );
            compiling = start_compiling();
        }
        assert!(Instant::now() < deadline, "the compile never took its turn");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let js = std::fs::read(polyglot("js", "calculator-typed")).expect("services/build.sh made it");
    let error = remote_error(deploy(&other, js.clone()).await.unwrap_err());
    assert_eq!(error.type_name, "RuntimeError", "{error}");
    assert!(error.message.contains("DEPLOY is at capacity"), "{error}");
    assert!(
        !compiling.is_finished(),
        "the refusal did not wait for the compile"
    );
    let calculator = compiling.await.unwrap().unwrap();
    assert!(deployer.cached_bytes() > 0 && deployer.cached_bytes() <= limits.cache_bytes);
    assert_eq!(calculator.call::<i64>("add", (4, 7)).await.unwrap(), 11);
    // Its class names it, as RPyC names a service; one that declares no
    // aliases is named by the deployer, or else DEPLOYED.
    let name: String = calculator.call("get_service_name", ()).await.unwrap();
    assert_eq!(name, "CALCULATOR");
    let unnamed = deploy(&conn, js).await.unwrap();
    let name: String = unnamed.call("get_service_name", ()).await.unwrap();
    assert_eq!(name, "DEPLOYED");
    let named = deploy_as(&conn, "calculator", bytes).await.unwrap();
    let name: String = named.call("get_service_name", ()).await.unwrap();
    assert_eq!(name, "CALCULATOR");
    assert!(
        named.class().starts_with("CALCULATOR@"),
        "{}",
        named.class()
    );
}
