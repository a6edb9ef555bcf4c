// Write wasm-rpyc services in JavaScript (componentize-js).
//
// A service is a component whose `exposed-*` exports are remote methods: in
// JavaScript, the module's exported functions `exposedAdd` and so on (WIT
// names in camelCase). Wrap each with `exposed` and it reads like an RPyC
// service:
//
//     import { exposed, raise } from './wasm-rpyc-guest.js';
//
//     export const exposedAdd = exposed((a, b) => a + b);
//     export const exposedDiv = exposed((a, b) => {
//       if (b === 0) raise('ZeroDivisionError', 'division by zero');
//       return a / b;
//     });
//
// `exposed(fn)`:
// - an error `fn` throws becomes the export's `error` (declare the export
//   `-> result<T, error>`): a `raise`d error keeps its Python class, a
//   JavaScript `TypeError` is a `TypeError`, a `RangeError` a `ValueError`,
//   any other error an `Exception`;
// - a `netref` argument arrives as a function: call it (`func(1)`), read an
//   attribute (`func.attr('name')`), call a method (`func.method('name', 1)`),
//   ask its Python class (`func.className()`). JavaScript cannot tell when an
//   object is no longer used, so the peer's objects an export receives are
//   released when it returns, unless it passes them to `keep(func)` (then
//   `release(func)` lets go);
// - a dynamic `value` argument arrives as the JavaScript value it holds
//   (tuples as arrays, integers as numbers or, when large, BigInts); return
//   `toValue(x)` where the export returns a `value`.
//
// `root.call('foo', ...args)` calls the peer's `root.foo(...)` (RPyC's
// `self._conn.root`). An error the peer raises is thrown as a `ServiceError`
// carrying its Python class name.

import { call, callAsync as sendCall, callMethod, callRoot, connection as runningConnection, getAttr } from 'wasm-rpyc:service/peer@0.1.0';
import { pack, unpack } from './wasm-rpyc-packed.js';

/** An exception with a Python class name, as the peer sees it. */
export class ServiceError extends Error {
  constructor(typeName, message) {
    super(message);
    this.name = typeName;
    this.payload = { typeName, message };
  }
}

/** Throws `typeName(message)` to the caller (`raise ZeroDivisionError(...)`). */
export function raise(typeName, message) {
  throw new ServiceError(typeName, message);
}

const PYTHON_NAMES = { TypeError: 'TypeError', RangeError: 'ValueError' };

/** The `ServiceError` a thrown value reaches the caller as. */
export function asServiceError(error) {
  if (error instanceof ServiceError) return error;
  if (error instanceof Error) {
    return new ServiceError(PYTHON_NAMES[error.name] ?? 'Exception', error.message);
  }
  return new ServiceError('Exception', String(error));
}

/** Calls a `peer` function: its value, or the peer's error thrown. */
function answer(request, ...args) {
  let value;
  try {
    value = request(...args);
  } catch (error) {
    const { typeName, message } = error.payload ?? { typeName: 'Exception', message: String(error) };
    throw new ServiceError(typeName, message);
  }
  return fromValue(value, receiving ?? []);
}

const HANDLES = new WeakMap();
const KEPT = new WeakSet();
/** The peer's objects the export being called has received so far. */
let receiving = null;
/** `Symbol.dispose`: the method that lets go of an object's resources. */
export const DISPOSE = Symbol.dispose ?? Symbol.for('dispose');

/** Keeps one of the peer's objects past the call that received it. */
export function keep(remote) {
  KEPT.add(remote);
  return remote;
}

/** Releases one of the peer's objects now; it cannot be used afterwards. */
export function release(remote) {
  const handle = HANDLES.get(remote);
  HANDLES.delete(remote);
  handle?.[DISPOSE]?.();
}

/** The connection the running call, hook or release comes from: 0n in an
 * instance of its own, a number of its own per connection in a shared
 * instance (`serve --shared`). */
export function connection() {
  return runningConnection();
}

/** Calls one of the peer's objects without waiting (RPyC's `async_`): the
 * call is sent and this returns at once; its answer, or the exception it
 * raises, is dropped. */
export function callAsync(remote, ...args) {
  const handle = HANDLES.get(remote);
  if (handle === undefined) throw new ServiceError('TypeError', 'callAsync calls one of the peer\'s objects');
  try {
    sendCall(handle, args.map(toValue), []);
  } catch (error) {
    const { typeName, message } = error.payload ?? { typeName: 'Exception', message: String(error) };
    throw new ServiceError(typeName, message);
  }
}

/** One of the peer's objects as a function that calls it. */
function netref(handle) {
  const remote = (...args) => answer(call, handle, args.map(toValue), []);
  remote.attr = (name) => answer(getAttr, handle, name);
  remote.method = (name, ...args) => answer(callMethod, handle, name, args.map(toValue), []);
  remote.className = () => handle.className();
  // `callback.async(...args)`: RPyC's `async_(callback)(*args)`.
  remote.async = (...args) => callAsync(remote, ...args);
  // `callback.keep()`: kept past the call that received it.
  remote.keep = () => keep(remote);
  HANDLES.set(remote, handle);
  return remote;
}

/** The peer's service: `root.call('foo', 1, 2)`. */
export const root = {
  call: (name, ...args) => answer(callRoot, name, args.map(toValue), []),
};

/** Releases the peer's objects in `received` that were not kept. */
export function releaseUnkept(received) {
  for (const remote of received) if (!KEPT.has(remote)) release(remote);
}

const TUPLE = Symbol('tuple');

/** A Python tuple: sent by value even where arrays go by reference. */
export function tuple(...items) {
  const value = [...items];
  value[TUPLE] = true;
  return Object.freeze(value);
}

// The service's own objects the peer holds, when it lends them.
let lent = null;

/** Makes `toValue` lend what brine cannot carry (arrays, objects,
 * functions) as `table.lend(x)` names it, and `fromValue` give back
 * `table.get(handle)` for an object the peer passes back. */
export function lendObjects(table) {
  lent = table;
}

/** A JavaScript value as the dynamic `value` record. */
export function toValue(item) {
  const netrefs = [];
  const packed = pack(item, (x) => {
    if (Array.isArray(x) && x[TUPLE]) return { tuple: x };
    if (lent !== null && !HANDLES.has(x)) return { object: lent.lend(x) };
    if (Array.isArray(x)) return { tuple: x };
    if (x instanceof Set) return { frozenset: [...x] };
    if (HANDLES.has(x)) {
      netrefs.push(HANDLES.get(x)); // handed over: the peer's own again
      HANDLES.delete(x);
      return { netref: netrefs.length - 1 };
    }
    throw new TypeError(`a ${typeof x} cannot be sent to the peer`);
  });
  return { packed, netrefs };
}

/** The JavaScript value a dynamic `value` record holds; the peer's objects
 * in it are also added to `received`. */
export function fromValue(value, received = []) {
  const held = new Map();
  return unpack(value.packed, {
    netref: (index) => {
      if (index >= value.netrefs.length) throw new Error(`malformed packed value: it names netref ${index}, of ${value.netrefs.length} given`);
      if (!held.has(index)) {
        const remote = netref(value.netrefs[index]);
        received.push(remote);
        held.set(index, remote);
      }
      return held.get(index);
    },
    object: (handle) => lent.get(handle),
  });
}

// A handle of the `netref` resource, known by its method (componentize-js
// offers no module for an interface without functions to import the class from).
const isHandle = (x) => typeof x === 'object' && x !== null && typeof x.className === 'function';

function incoming(arg, received) {
  if (isHandle(arg)) {
    const remote = netref(arg);
    received.push(remote);
    return remote;
  }
  if (arg && arg.packed instanceof Uint8Array && Array.isArray(arg.netrefs)) return fromValue(arg, received);
  return arg;
}

/** An exposed method: see the module's documentation. */
export function exposed(fn) {
  return (...args) => {
    const received = [];
    const outer = receiving;
    receiving = received;
    try {
      return fn(...args.map((arg) => incoming(arg, received)));
    } catch (error) {
      throw asServiceError(error);
    } finally {
      receiving = outer;
      releaseUnkept(received);
    }
  };
}
