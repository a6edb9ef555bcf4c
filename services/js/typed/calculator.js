// The seed's CalculatorService with a typed world (services/wit/calculator),
// for comparison with the plain class (wasm-rpyc-bench languages).
import { exposed, raise } from '../../../guest-sdk/js/wasm-rpyc-guest.js';

export const exposedAdd = exposed((a, b) => a + b);
export const exposedSub = exposed((a, b) => a - b);
export const exposedMul = exposed((a, b) => a * b);
export const exposedDiv = exposed((a, b) => {
  if (b === 0) raise('ZeroDivisionError', 'division by zero');
  return a / b;
});

// Not exposed: peers cannot reach it.
export function foo() {
  console.log('foo');
}
