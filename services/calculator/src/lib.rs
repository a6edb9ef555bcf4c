//! The seed's `CalculatorService`.

wit_bindgen::generate!({
    path: ["../../wit", "wit"],
    world: "example:calculator/calculator",
    with: {
        "wasm-rpyc:service/types@0.1.0": wasm_rpyc_guest::types,
        "wasm-rpyc:service/peer@0.1.0": wasm_rpyc_guest::peer,
    },
});

struct CalculatorService;

fn checked(result: Option<i64>) -> Result<i64, Error> {
    result.ok_or_else(|| Error::overflow("integer result does not fit in 64 bits"))
}

impl Guest for CalculatorService {
    fn exposed_add(a: i64, b: i64) -> Result<i64, Error> {
        checked(a.checked_add(b))
    }

    fn exposed_sub(a: i64, b: i64) -> Result<i64, Error> {
        checked(a.checked_sub(b))
    }

    fn exposed_mul(a: i64, b: i64) -> Result<i64, Error> {
        checked(a.checked_mul(b))
    }

    fn exposed_div(a: f64, b: f64) -> Result<f64, Error> {
        if b == 0.0 {
            return Err(Error::zero_division("division by zero"));
        }
        Ok(a / b)
    }

    fn foo() {
        println!("foo");
    }
}

export!(CalculatorService);
