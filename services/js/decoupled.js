// The seed's decoupled ServerService, as a JavaScript class: it calls the
// client's own service back (`this._conn.root`).

export class ServerService {
  exposed_bar() {
    return this._conn.root.foo() + 'bar';
  }
}
