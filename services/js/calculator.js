// The seed's CalculatorService, as a JavaScript class (built with
// `wasm-rpyc build calculator.js`).

export class CalculatorService {
  exposed_add(a, b) {
    return a + b;
  }
  exposed_sub(a, b) {
    return a - b;
  }
  exposed_mul(a, b) {
    return a * b;
  }
  exposed_div(a, b) {
    // Python's `a / b` raises where JavaScript's gives Infinity.
    if (b === 0) throw new ZeroDivisionError('division by zero');
    return a / b;
  }
  foo() {
    console.log('foo');
  }
}

// An error class named as a Python builtin reaches the peer as that builtin.
class ZeroDivisionError extends Error {}
