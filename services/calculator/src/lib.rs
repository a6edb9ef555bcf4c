//! The seed's `CalculatorService`.

use wasm_rpyc_guest::{Error, service};

struct CalculatorService;

#[service]
impl CalculatorService {
    fn exposed_add(a: i64, b: i64) -> Result<i64, Error> {
        checked(a.checked_add(b))
    }

    fn exposed_sub(a: i64, b: i64) -> Result<i64, Error> {
        checked(a.checked_sub(b))
    }

    fn exposed_mul(a: i64, b: i64) -> Result<i64, Error> {
        checked(a.checked_mul(b))
    }

    /// True division, as Python's `a / b`.
    fn exposed_div(a: f64, b: f64) -> Result<f64, Error> {
        if b == 0.0 {
            return Err(Error::zero_division("division by zero"));
        }
        Ok(a / b)
    }

    /// Not exposed: peers cannot reach it.
    #[allow(dead_code)]
    fn foo() {
        println!("foo");
    }
}

/// Python's ints do not overflow; ours raise `OverflowError` instead.
fn checked(result: Option<i64>) -> Result<i64, Error> {
    result.ok_or_else(|| Error::overflow("integer result does not fit in 64 bits"))
}
