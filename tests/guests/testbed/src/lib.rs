//! A test service: echoes every WIT type, raises, traps, spins, and counts
//! its hooks.

wit_bindgen::generate!({
    path: ["../../../wit", "wit"],
    world: "test:testbed/testbed",
    with: {
        "wasm-rpyc:service/types@0.1.0": wasm_rpyc_guest::types,
        "wasm-rpyc:service/peer@0.1.0": wasm_rpyc_guest::peer,
    },
});

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use exports::tools::Guest as Tools;

static CALLS: AtomicU32 = AtomicU32::new(0);
static CONNECTS: AtomicU32 = AtomicU32::new(0);
static DISCONNECTS: AtomicU32 = AtomicU32::new(0);
static TAG: Mutex<String> = Mutex::new(String::new());

thread_local! {
    static KEPT: std::cell::RefCell<Vec<Netref>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Testbed;

impl Guest for Testbed {
    fn exposed_echo_bool(v: bool) -> bool {
        v
    }
    fn exposed_echo_s8(v: i8) -> i8 {
        v
    }
    fn exposed_echo_u8(v: u8) -> u8 {
        v
    }
    fn exposed_echo_s16(v: i16) -> i16 {
        v
    }
    fn exposed_echo_u16(v: u16) -> u16 {
        v
    }
    fn exposed_echo_s32(v: i32) -> i32 {
        v
    }
    fn exposed_echo_u32(v: u32) -> u32 {
        v
    }
    fn exposed_echo_s64(v: i64) -> i64 {
        v
    }
    fn exposed_echo_u64(v: u64) -> u64 {
        v
    }
    fn exposed_echo_f32(v: f32) -> f32 {
        v
    }
    fn exposed_echo_f64(v: f64) -> f64 {
        v
    }
    fn exposed_echo_char(v: char) -> char {
        v
    }
    fn exposed_echo_string(v: String) -> String {
        v
    }
    fn exposed_echo_bytes(v: Vec<u8>) -> Vec<u8> {
        v
    }
    fn exposed_echo_list(v: Vec<i32>) -> Vec<i32> {
        v
    }
    fn exposed_echo_nested(v: Vec<Vec<String>>) -> Vec<Vec<String>> {
        v
    }
    fn exposed_echo_tuple(v: (i32, String, bool)) -> (i32, String, bool) {
        v
    }
    fn exposed_echo_option(v: Option<String>) -> Option<String> {
        v
    }
    fn exposed_echo_results(v: Vec<Result<i32, String>>) -> Vec<Result<i32, String>> {
        v
    }
    fn exposed_echo_record(v: Point) -> Point {
        v
    }
    fn exposed_echo_variant(v: Shape) -> Shape {
        v
    }
    fn exposed_echo_enum(v: Color) -> Color {
        v
    }
    fn exposed_echo_flags(v: Perms) -> Perms {
        v
    }
    fn exposed_echo_value(v: Value) -> Value {
        v
    }
    fn exposed_echo_netref(v: Netref) -> Netref {
        v
    }
    fn exposed_class_of(v: &Netref) -> String {
        v.class_name()
    }
    fn exposed_call_with(f: Netref, arg: Netref) -> Result<Value, Error> {
        wasm_rpyc_guest::peer::call(&f, vec![Value::from(arg)], Vec::new())
    }
    fn exposed_keep(v: Netref) -> u32 {
        KEPT.with_borrow_mut(|kept| {
            kept.push(v);
            kept.len() as u32
        })
    }
    fn exposed_call_kept(index: u32, arg: Value) -> Result<Value, Error> {
        KEPT.with_borrow(|kept| match kept.get(index as usize) {
            Some(f) => wasm_rpyc_guest::peer::call(f, vec![arg], Vec::new()),
            None => Err(Error::new("IndexError", "nothing kept at that index")),
        })
    }
    fn exposed_call_kept_async(text: String) -> Result<(), Error> {
        KEPT.with_borrow(|kept| {
            for f in kept {
                let arg = Value::from(text.as_str());
                wasm_rpyc_guest::peer::call_async(f, vec![arg], Vec::new())?;
            }
            Ok(())
        })
    }
    fn exposed_connection() -> u64 {
        wasm_rpyc_guest::peer::connection()
    }
    fn exposed_sum_two(a: i32, b: Option<i32>) -> i32 {
        a + b.unwrap_or(0)
    }
    fn exposed_get_value() -> i32 {
        42
    }
    fn exposed_raise(type_name: String, message: String) -> Result<(), Error> {
        Err(Error::new(type_name, message))
    }
    fn exposed_fail_with_string() -> Result<(), String> {
        Err("plain string error".into())
    }
    fn exposed_panic(message: String) {
        panic!("{message}");
    }
    #[allow(clippy::empty_loop)]
    fn exposed_spin() {
        loop {}
    }
    fn exposed_work(ms: u32) -> u32 {
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_millis(ms.into()) {
            std::hint::spin_loop();
        }
        ms
    }
    fn exposed_sleep(ms: u32) -> u32 {
        std::thread::sleep(std::time::Duration::from_millis(ms.into()));
        ms
    }
    fn exposed_shout(lines: u32, width: u32) {
        let line = "!".repeat(width as usize);
        for _ in 0..lines {
            println!("{line}");
        }
    }
    fn exposed_allocate(mib: u32) -> u32 {
        let mut held = Vec::new();
        for _ in 0..mib {
            held.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
        held.len() as u32
    }
    fn exposed_recurse(depth: u64) -> u64 {
        recurse(depth)
    }
    fn exposed_bytes_of(len: u32) -> Vec<u8> {
        vec![7; len as usize]
    }
    fn exposed_text_of(len: u32) -> String {
        "x".repeat(len as usize)
    }
    fn exposed_counter() -> u32 {
        CALLS.fetch_add(1, Ordering::Relaxed) + 1
    }
    fn exposed_connects() -> u32 {
        CONNECTS.load(Ordering::Relaxed)
    }
    fn exposed_disconnects() -> u32 {
        DISCONNECTS.load(Ordering::Relaxed)
    }
    fn exposed_set_tag(tag: String) {
        *TAG.lock().unwrap() = tag;
    }
    fn hidden() -> i32 {
        7
    }
    fn on_connect() {
        CONNECTS.fetch_add(1, Ordering::Relaxed);
    }
    fn on_disconnect() {
        DISCONNECTS.fetch_add(1, Ordering::Relaxed);
        // The peer is gone: the call must fail at once, with a clear error.
        let peer_call = match wasm_rpyc_guest::peer::call_root("foo", Vec::new(), Vec::new()) {
            Ok(_) => "answered".to_owned(),
            Err(error) => format!("{}: {}", error.type_name, error.message),
        };
        println!(
            "on-disconnect {} (peer call: {peer_call})",
            TAG.lock().unwrap()
        );
    }
    fn service_aliases() -> Vec<String> {
        vec!["testbed".into(), "bench".into()]
    }
}

impl Tools for Testbed {
    fn exposed_twice(x: i32) -> i32 {
        x * 2
    }
}

/// Recursion the optimizer cannot turn into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == 0 {
        return 0;
    }
    std::hint::black_box(recurse(depth - 1)) + 1
}

export!(Testbed);
