// The seed's callback ServerService, in JavaScript (world: services/wit/callback).
import { exposed, raise } from '../../../guest-sdk/js/wasm-rpyc-guest.js';

export const exposedBar = exposed((func) => {
  const foo = func();
  // As Python's `func() + "bar"` does, refuse what is not a string.
  if (typeof foo !== 'string') raise('TypeError', `can only concatenate str (not "${typeof foo}") to str`);
  return foo + 'bar';
});

// RPyC names the seed's `ServerService` SERVER.
export function serviceAliases() {
  return ['server'];
}
