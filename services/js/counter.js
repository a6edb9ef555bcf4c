// A counter every connection shares: serve it with
// `wasm-rpyc serve --shared counter.js`. Module-level state is shared by
// every connection; `this` is the connection's own service object.

let count = 0;

export class CounterService {
  constructor() {
    this.mine = 0;
  }

  /** Adds `n` to the shared count; the count after. */
  exposed_increment(n = 1) {
    this.mine += n;
    count += n;
    return count;
  }

  /** The shared count. */
  exposed_value() {
    return count;
  }

  /** How much this connection added. */
  exposed_mine() {
    return this.mine;
  }
}
