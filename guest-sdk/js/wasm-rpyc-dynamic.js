// Serves a plain JavaScript class as a component of the `dynamic` world.
//
// `wasm-rpyc build calculator.js` writes an app module that passes the
// service's module to `serve` and exports what it returns. The module's
// exported class with `exposed_` members is the service (`--service NAME`
// picks one of several); every connection gets its own instance, made at
// `on-connect`. Each attribute, call and question the peer asks of one of
// the service's objects arrives through the `objects` interface and is
// answered here under RPyC's access policy, in JavaScript's terms: an
// `exposed_` member, or one of the Python protocols an RPyC client uses
// (`__len__`, `__getitem__`, `__contains__`, `__iter__`, `__next__`, ...)
// on arrays, plain objects, Maps, Sets and iterators. Values brine cannot
// carry (arrays, objects, instances, functions) go to the peer by
// reference and come back as themselves; an object's `[Symbol.dispose]()`
// runs when the peer has released every reference to it. A call binds its
// arguments as Python would (`wasm-rpyc-arguments.js`).

import { bind } from './wasm-rpyc-arguments.js';
import { DISPOSE, ServiceError, asServiceError, connection, fromValue, lendObjects, releaseUnkept, root, toValue, tuple } from './wasm-rpyc-guest.js';

const PREFIX = 'exposed_';

/** The service's objects the peer holds, by handle (0 is the running
 * connection's service object). */
class Table {
  constructor(module) {
    this.module = module;
    this.objects = new Map();
    // Each connection's service object, by its number.
    this.roots = new Map();
    // How many handles the peer holds of each object.
    this.holds = new Map();
    this.next = 1n;
  }

  /** Makes `service` connection `number`'s object of handle 0. */
  root(number, service) {
    this.roots.set(number, service);
  }

  /** Connection `number` has ended; once none is left, every object still
   * lent is forgotten (and disposed). */
  forgetRoot(number) {
    this.roots.delete(number);
    if (this.roots.size > 0) return;
    const held = [...this.holds.keys()];
    this.objects.clear();
    this.holds.clear();
    held.forEach(dispose);
  }

  lend(obj) {
    const handle = this.next;
    this.next += 1n;
    this.objects.set(handle, obj);
    this.holds.set(obj, (this.holds.get(obj) ?? 0) + 1);
    return { handle, className: className(obj, this.module) };
  }

  get(handle) {
    if (handle === 0n) {
      // With one connection (always, in an instance of its own), its root
      // is the one: no need to ask the host which.
      if (this.roots.size === 1) return this.roots.values().next().value;
      if (this.roots.has(connection())) return this.roots.get(connection());
    }
    if (!this.objects.has(handle)) throw new ServiceError('ReferenceError', `the service holds no object ${handle}`);
    return this.objects.get(handle);
  }

  /** The peer lets go of `handle`: the last handle of an object disposes it. */
  release(handle) {
    if (handle === 0n || !this.objects.has(handle)) return;
    const obj = this.objects.get(handle);
    this.objects.delete(handle);
    const holds = this.holds.get(obj) - 1;
    if (holds > 0) {
      this.holds.set(obj, holds);
      return;
    }
    this.holds.delete(obj);
    dispose(obj);
  }
}

/** Runs `obj[Symbol.dispose]()`, if it has one; what it throws is printed
 * and ignored, as Python ignores a failing finaliser. */
function dispose(obj) {
  if (typeof obj?.[DISPOSE] !== 'function') return;
  try {
    obj[DISPOSE]();
  } catch (error) {
    console.error(`Exception ignored in ${obj.constructor?.name ?? 'object'}[Symbol.dispose]: ${error}`);
  }
}

const isIterator = (x) => typeof x?.next === 'function' && typeof x[Symbol.iterator] === 'function';
// Whether each function is a class, by its source (read once: reading a
// function's source is slow in the component's interpreter).
const CLASSES = new WeakMap();
function isClass(f) {
  if (typeof f !== 'function') return false;
  if (!CLASSES.has(f)) CLASSES.set(f, /^class[\s{]/.test(Function.prototype.toString.call(f)));
  return CLASSES.get(f);
}
const isPlain = (x) => x !== null && typeof x === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(x));

/** The class a peer sees, dotted as Python names it. */
function className(obj, module) {
  if (Array.isArray(obj)) return 'builtins.list';
  if (obj instanceof Map || isPlain(obj)) return 'builtins.dict';
  if (obj instanceof Set) return 'builtins.set';
  if (isClass(obj)) return 'builtins.type';
  if (typeof obj === 'function') return obj.boundTo ? 'builtins.method' : 'builtins.function';
  if (isIterator(obj)) return 'builtins.generator';
  return `${module}.${obj?.constructor?.name ?? 'object'}`;
}

const attributeError = (name) => new ServiceError('AttributeError', `cannot access '${name}'`);

/** `obj[name]` bound to `obj` when it is a method. */
function member(obj, name) {
  const value = obj[name];
  if (typeof value !== 'function' || isClass(value)) return value;
  const bound = value.bind(obj);
  bound.boundTo = obj;
  bound.unbound = value;
  return bound;
}

/** The class whose static members an instance `obj` shows, as Python's
 * instances show their class's attributes (none for a class itself). */
function staticsOf(obj) {
  const cls = Object(obj).constructor;
  return isClass(cls) && !isClass(obj) ? cls : null;
}

/** The member of `obj` that a peer's `name` reaches: its `exposed_` name,
 * its own or its class's static one. */
function exposedMember(obj, name) {
  const exposed = name.startsWith(PREFIX) ? name : PREFIX + name;
  if (obj !== null && obj !== undefined) {
    if (exposed in Object(obj)) return member(obj, exposed);
    const statics = staticsOf(obj);
    if (statics !== null && exposed in statics) return member(statics, exposed);
  }
  throw attributeError(name);
}

const keyError = (key) => new ServiceError('KeyError', String(key));

/** Python's protocols on JavaScript's containers, by dunder name. */
const PROTOCOLS = {
  __len__(obj) {
    if (Array.isArray(obj) || typeof obj === 'string') return obj.length;
    if (obj instanceof Map || obj instanceof Set) return obj.size;
    if (isPlain(obj)) return Object.keys(obj).length;
    return undefined;
  },
  __getitem__(obj, key) {
    if (Array.isArray(obj)) {
      const at = key < 0 ? obj.length + key : key;
      if (!Number.isInteger(at) || at < 0 || at >= obj.length) throw new ServiceError('IndexError', 'list index out of range');
      return obj[at];
    }
    if (obj instanceof Map) {
      if (!obj.has(key)) throw keyError(key);
      return obj.get(key);
    }
    if (isPlain(obj)) {
      if (!Object.hasOwn(obj, key)) throw keyError(key);
      return obj[key];
    }
    return undefined;
  },
  __contains__(obj, item) {
    if (Array.isArray(obj)) return obj.includes(item);
    if (obj instanceof Map || obj instanceof Set) return obj.has(item);
    if (isPlain(obj)) return Object.hasOwn(obj, item);
    return undefined;
  },
  __iter__(obj) {
    if (isPlain(obj)) return Object.keys(obj)[Symbol.iterator]();
    if (obj instanceof Map) return obj.keys();
    if (obj !== null && typeof obj?.[Symbol.iterator] === 'function') return obj[Symbol.iterator]();
    return undefined;
  },
  __next__(obj) {
    if (!isIterator(obj)) return undefined;
    const { value, done } = obj.next();
    if (done) throw new ServiceError('StopIteration', '');
    return value;
  },
  __eq__: (obj, other) => obj === other,
  __ne__: (obj, other) => obj !== other,
  __repr__: (obj) => repr(obj),
  __str__: (obj) => (typeof obj === 'string' ? obj : repr(obj)),
};

/** Python's `repr` of a JavaScript value, as near as it goes. */
function repr(obj, seen = new Set()) {
  if (obj === null || obj === undefined) return 'None';
  if (typeof obj === 'boolean') return obj ? 'True' : 'False';
  if (typeof obj === 'string') return `'${obj.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
  if (typeof obj !== 'object' && typeof obj !== 'function') return String(obj);
  if (seen.has(obj)) return '...';
  seen.add(obj);
  if (Array.isArray(obj)) return `[${obj.map((x) => repr(x, seen)).join(', ')}]`;
  if (obj instanceof Map) return `{${[...obj].map(([k, v]) => `${repr(k, seen)}: ${repr(v, seen)}`).join(', ')}}`;
  if (isPlain(obj)) return `{${Object.entries(obj).map(([k, v]) => `${repr(k, seen)}: ${repr(v, seen)}`).join(', ')}}`;
  if (typeof obj === 'function') return `<function ${obj.name || 'anonymous'}>`;
  return `<${obj.constructor?.name ?? 'object'} object>`;
}

/** `target(...args, **kwargs)` as Python binds it; a class is constructed. */
function invoke(target, args, kwargs, name) {
  if (typeof target !== 'function') throw new ServiceError('TypeError', `'${typeof target}' object is not callable`);
  const bound = bind(target, name, args, kwargs);
  return isClass(target) ? new target(...bound) : target(...bound);
}

/** Calls `obj.method(...args)` as an RPyC client means it. */
function callMethod(obj, method, args, kwargs) {
  const protocol = PROTOCOLS[method];
  if (protocol && kwargs.length === 0) {
    const result = protocol(obj, ...args);
    if (result !== undefined) return result;
  }
  return invoke(exposedMember(obj, method), args, kwargs, method);
}

/** Every name along `obj`'s prototype chain. */
function names(obj) {
  const all = new Set();
  for (let at = obj; at !== null && at !== undefined && at !== Object.prototype; at = Object.getPrototypeOf(at)) {
    for (const name of Object.getOwnPropertyNames(at)) all.add(name);
  }
  return [...all];
}

// Identities for `hash()`, as Python hashes an instance by its identity.
const IDENTITIES = new WeakMap();
let nextIdentity = 1;

/** Python's `hash`: containers are unhashable, anything else hashes by
 * identity. */
function hash(obj) {
  if (Array.isArray(obj) || isPlain(obj) || obj instanceof Map || obj instanceof Set) {
    throw new ServiceError('TypeError', `unhashable type: '${className(obj, '').split('.').pop()}'`);
  }
  if (!IDENTITIES.has(obj)) IDENTITIES.set(obj, nextIdentity++);
  return IDENTITIES.get(obj);
}

function describe(obj, what) {
  switch (what) {
    case 'repr': return repr(obj);
    case 'str': return PROTOCOLS.__str__(obj);
    case 'hash': return hash(obj);
    case 'dir': return tuple(...names(Object(obj)).sort());
    case 'methods': {
      const own = names(Object(obj)).filter((name) => name !== 'constructor' && typeof obj[name] === 'function');
      return tuple(...[...new Set([...own, ...Object.keys(PROTOCOLS)])].map((name) => tuple(name, null)));
    }
    default: { // exposed-callables
      const statics = staticsOf(obj);
      const callable = (name) => typeof obj[name] === 'function' || typeof statics?.[name] === 'function';
      const all = new Set([...names(Object(obj)), ...(statics === null ? [] : names(statics))]);
      return tuple(...[...all].filter((name) => name.startsWith(PREFIX) && callable(name))
        .map((name) => name.slice(PREFIX.length)));
    }
  }
}

// JavaScript's own error classes; any other is the service's own.
const BUILTIN_ERRORS = new Set([Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]);

// Python's builtin exceptions a service's own error class may be named as.
const PYTHON_ERRORS = new Set([
  'ArithmeticError', 'AssertionError', 'AttributeError', 'BufferError', 'ConnectionError', 'EOFError',
  'Exception', 'FileExistsError', 'FileNotFoundError', 'FloatingPointError', 'IndexError', 'KeyError',
  'LookupError', 'MemoryError', 'NotImplementedError', 'OSError', 'OverflowError', 'PermissionError',
  'RecursionError', 'RuntimeError', 'StopIteration', 'TimeoutError', 'UnicodeError', 'ValueError',
  'ZeroDivisionError',
]);

/** The `ServiceError` a thrown value reaches the caller as: an error class
 * of the service's own as `module.Class`, or as the Python builtin it is
 * named as (`class ZeroDivisionError extends Error {}`); an error whose
 * `name` is set (to `KeyError`, say) by that name. */
function pythonError(error, module) {
  if (error instanceof Error && !(error instanceof ServiceError)) {
    const own = error.constructor.name;
    if (!BUILTIN_ERRORS.has(error.constructor)) {
      return new ServiceError(PYTHON_ERRORS.has(own) ? own : `${module}.${own}`, error.message);
    }
    if (error.name !== 'Error' && !BUILTIN_ERRORS.has(globalThis[error.name])) return new ServiceError(error.name, error.message);
  }
  return asServiceError(error);
}

/** The aliases RPyC gives a class: `ALIASES`, else its name without `Service`. */
function aliases(cls) {
  if (Array.isArray(cls.ALIASES) && cls.ALIASES.length > 0) return cls.ALIASES.map((a) => String(a).toUpperCase());
  const name = cls.name.toUpperCase();
  return [name.endsWith('SERVICE') ? name.slice(0, -'SERVICE'.length) : name];
}

/** The service class of `module`: the exported class with `exposed_`
 * members (the one named `name`, if given). */
function serviceClass(module, file, name) {
  const found = Object.values(module).filter((value) => isClass(value) && names(value.prototype).some((n) => n.startsWith(PREFIX)));
  if (name !== null) {
    const chosen = found.find((cls) => cls.name === name);
    if (!chosen) throw new Error(`${file}: exports no service class named ${name}`);
    return chosen;
  }
  if (found.length === 0) throw new Error(`${file}: exports no class with exposed_ members (export class MyService { exposed_foo() {...} })`);
  if (found.length > 1) {
    throw new Error(`${file}: exports several service classes (${found.map((c) => c.name).join(', ')}); choose one with --service NAME`);
  }
  return found[0];
}

/** The exports of a component serving `module`'s service class (named
 * `name`, or the only one); `moduleName` names its classes to the peer. */
export function serve(module, moduleName, name) {
  let cls;
  try {
    cls = serviceClass(module, `${moduleName}.js`, name);
  } catch (error) {
    console.error(`wasm-rpyc build: ${error.message}`);
    throw error;
  }
  const table = new Table(moduleName);
  // Runs an export's body: its exception becomes the caller's.
  const answering = (body) => {
    try {
      return body();
    } catch (error) {
      throw pythonError(error, moduleName);
    }
  };
  lendObjects(table);
  // `conn.root.foo(...)` calls the peer's `foo`; in a shared instance,
  // during its own connection's calls and hooks.
  const peer = new Proxy(root, { get: (target, key) => (key in target ? target[key] : (...a) => target.call(key, ...a)) });
  const connectionOf = (number) => ({
    get root() {
      if (connection() !== number) {
        throw new ServiceError('RuntimeError', "conn.root reaches its peer only during its own connection's calls; keep the peer's callbacks to reach it from another connection's");
      }
      return peer;
    },
  });
  // Each connection's service object and connection, by its number.
  const services = new Map();
  const hook = (number, name) => {
    const [service, conn] = services.get(number) ?? [];
    const camel = name.replace(/_(.)/g, (_, c) => c.toUpperCase());
    const body = service?.[name] ?? service?.[camel];
    if (typeof body === 'function') body.call(service, conn);
  };

  return {
    serviceAliases: () => aliases(cls),
    onConnect: () => answering(() => {
      const number = connection();
      const service = new cls();
      const conn = connectionOf(number);
      service._conn = conn; // RPyC's `self._conn`
      services.set(number, [service, conn]);
      table.root(number, service);
      try {
        hook(number, 'on_connect');
      } catch (error) {
        // The connection closes: it leaves nothing behind.
        services.delete(number);
        table.forgetRoot(number);
        throw error;
      }
    }),
    onDisconnect: () => {
      const number = connection();
      try {
        hook(number, 'on_disconnect');
      } catch (error) {
        // Nobody is left to tell but the log (and the instance, which other
        // connections may share, lives on).
        console.error(`Exception ignored in on_disconnect: ${error}`);
      } finally {
        services.delete(number);
        table.forgetRoot(number);
      }
    },
    objects: {
      getAttr: (handle, name) => answering(() => toValue(exposedMember(table.get(handle), name))),
      call: (handle, method, positional, keywords) => answering(() => {
        // The peer's objects among the arguments are released after the
        // call, unless the service keeps them (`keep`).
        const received = [];
        try {
          const obj = table.get(handle);
          const args = fromValue(positional, received);
          const kwargs = keywords.map(([key, value]) => [key, fromValue(value, received)]);
          const result = method === undefined || method === null
            ? invoke(obj, args, kwargs, obj?.name ?? 'object')
            : callMethod(obj, method, args, kwargs);
          return toValue(result);
        } finally {
          releaseUnkept(received);
        }
      }),
      describe: (handle, what) => answering(() => toValue(describe(table.get(handle), what))),
      // RPyC's default policy, which a JavaScript service keeps: no
      // attribute is set or deleted, nothing pickled.
      setAttr: (handle, name) => answering(() => {
        table.get(handle);
        throw attributeError(name);
      }),
      delAttr: (handle, name) => answering(() => {
        table.get(handle);
        throw attributeError(name);
      }),
      pickle: (handle) => answering(() => {
        table.get(handle);
        throw new ServiceError('ValueError', 'pickling is disabled');
      }),
      buffIter: (handle, count) => answering(() => {
        const obj = table.get(handle);
        if (!isIterator(obj)) throw new ServiceError('TypeError', 'the object is not iterable');
        const items = [];
        while (items.length < count) {
          const { value, done } = obj.next();
          if (done) break;
          items.push(value);
        }
        return toValue(tuple(...items));
      }),
      exitContext: (handle) => answering(() => toValue(callMethod(table.get(handle), '__exit__', [null, null, null], []))),
      // A JavaScript service lends no classes (its classes are exposed ones).
      instanceCheck: (handle) => answering(() => {
        table.get(handle);
        return toValue(false);
      }),
      release: (handle) => table.release(handle),
    },
  };
}

