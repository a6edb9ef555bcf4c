// The seed's MyService, as a JavaScript class: an exposed class, ALIASES and
// the connection hooks, with three members the conformance table uses to
// observe them.

// MyClass instances alive: `[Symbol.dispose]()` runs when the peer lets go
// of one.
let live = 0;

class MyClass {
  constructor(a, b) {
    this.a = a;
    this.b = b;
    live += 1;
  }
  exposed_foo() {
    return this.a + this.b;
  }
  exposed_add(other) {
    return new MyClass(this.a + other.a, this.b + other.b);
  }
  secret() {
    return 42;
  }
  [Symbol.dispose]() {
    live -= 1;
  }
}

export class MyService {
  static ALIASES = ['foo', 'bar', 'spam'];
  // The seed: "this applies to methods, but in fact, it applies to any
  // attribute".
  static exposed_the_answer = 43;
  static exposed_MyClass = MyClass;

  on_connect(conn) {
    this.connected = true;
  }

  on_disconnect(conn) {}

  exposed_connected() {
    return this.connected;
  }

  exposed_live_objects() {
    return live;
  }

  exposed_same(obj, other) {
    for (const arg of [obj, other]) {
      if (!(arg instanceof MyClass)) throw new TypeError(`same() takes MyClass objects, not ${typeof arg}`);
    }
    return obj === other;
  }
}
