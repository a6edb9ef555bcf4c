//! A component whose only export lacks the `exposed-` prefix.

wit_bindgen::generate!({ path: "wit", world: "nothing-exposed" });

struct NothingExposed;

impl Guest for NothingExposed {
    fn add(a: i32, b: i32) -> i32 {
        a + b
    }
}

export!(NothingExposed);
