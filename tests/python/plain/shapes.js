// A service written as a plain JavaScript class, as an RPyC user would
// write it: `exposed_` members, dynamic values, objects by reference both
// ways. Built by `wasm-rpyc build` (the tests serve it with
// `wasm-rpyc serve shapes.js`).

// Points the peer has let go of.
let disposed = 0;

class Point {
  exposed_kind = 'point';

  constructor(x, y) {
    this.x = x;
    this.y = y;
  }

  exposed_norm2() {
    return this.x ** 2 + this.y ** 2;
  }

  // Not exposed.
  hidden() {
    return 'hidden';
  }

  [Symbol.dispose]() {
    disposed += 1;
  }
}

class Fault extends Error {}

export class ShapesService {
  static ALIASES = ['shapes', 'js'];
  static exposed_version = 2;
  exposed_the_answer = 43;
  exposed_Point = Point;

  on_connect(conn) {
    this.conn = conn;
    this.calls = 0;
  }

  exposed_add(a, b) {
    return a + b;
  }

  exposed_items() {
    return { a: 1, b: [1, 2, 3] };
  }

  exposed_numbers(n = 3) {
    return Array.from({ length: n }, (_, i) => i);
  }

  *exposed_count(n) {
    for (let i = 0; i < n; i += 1) yield i;
  }

  exposed_point(x, y) {
    return new Point(x, y);
  }

  exposed_same(a, b) {
    return a === b;
  }

  exposed_call(func, ...args) {
    return func(...args);
  }

  exposed_fail() {
    throw new Fault('it failed');
  }

  exposed_reject() {
    throw new RangeError('out of range');
  }

  exposed_peer_name() {
    return this.conn.root.get_service_name();
  }

  exposed_disposed() {
    return disposed;
  }

  exposed_count_calls() {
    this.calls += 1;
    return this.calls;
  }

  get exposed_prop() {
    return 'property';
  }
}
