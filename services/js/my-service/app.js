// The seed's MyService, in JavaScript (world: services/wit/my-service).

let live = 0;
let connected = false;

// The seed's exposed_MyClass: a resource is a class; the host's drop of an
// instance calls its `Symbol.dispose` method.
class ExposedMyClass {
  constructor(a, b) {
    this.a = a;
    this.b = b;
    live += 1;
  }

  exposedFoo() {
    return this.a + this.b;
  }

  exposedAdd(other) {
    return new ExposedMyClass(this.a + other.a, this.b + other.b);
  }

  // Not exposed.
  secret() {
    return 42n;
  }

  [Symbol.dispose]() {
    live -= 1;
  }
}

export const classes = {
  ExposedMyClass,
  exposedLiveObjects: () => BigInt(live),
  exposedSame: (obj, other) => obj === other,
};

export const serviceAliases = () => ['foo', 'bar', 'spam'];
export const onConnect = () => {
  connected = true;
};
export const onDisconnect = () => {};
export const exposedConnected = () => connected;
