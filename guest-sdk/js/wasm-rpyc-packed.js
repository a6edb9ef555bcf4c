// The bytes of the dynamic `value` record's `packed` field (the format is
// documented on the record in wit/service.wit): `pack` writes a JavaScript
// value's item, `unpack` reads one back. What the SDK's objects and the
// peer's mean is the caller's, through callbacks: this module only reads and
// writes bytes.

const NONE = 0;
const FALSE = 1;
const TRUE = 2;
const INT = 3;
const BIG_INT = 4;
const FLOAT = 5;
const COMPLEX = 6;
const STR = 7;
const BYTES = 8;
const TUPLE = 9;
const FROZENSET = 10;
const NETREF = 11;
const OBJECT = 12;

/** How deep items may nest in tuples and frozensets. */
const MAX_DEPTH = 100;

const LONG_MIN = -(2n ** 63n);
const LONG_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

const ENCODER = new TextEncoder();
// `ignoreBOM`: a string that begins with U+FEFF keeps it.
const DECODER = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** `item` packed: `null` and `undefined` are None, booleans, integers
 * (numbers that are integers, and BigInts), other numbers as floats,
 * strings and `Uint8Array`s are written as they are; anything else is
 * `leaf(x)`'s to say, which returns `{ tuple: items }`, `{ frozenset: items }`
 * (`items` an array), `{ netref: index }`, `{ object: { handle, className } }`
 * or throws. */
export function pack(item, leaf) {
  let bytes = new Uint8Array(64);
  let view = new DataView(bytes.buffer);
  let length = 0;
  // Where `n` more bytes go, the buffer grown to hold them (read `bytes`
  // and `view` after calling it: it may replace them).
  const reserve = (n) => {
    const at = length;
    length += n;
    if (length > bytes.length) {
      const grown = new Uint8Array(Math.max(2 * bytes.length, length));
      grown.set(bytes.subarray(0, at));
      bytes = grown;
      view = new DataView(bytes.buffer);
    }
    return at;
  };
  const tag = (t) => {
    const at = reserve(1);
    bytes[at] = t;
  };
  const u32 = (n) => {
    const at = reserve(4);
    view.setUint32(at, n, true);
  };
  // Its UTF-8 length, then its UTF-8 (at most 3 bytes a UTF-16 unit).
  const text = (s) => {
    const at = reserve(4 + 3 * s.length);
    const { written } = ENCODER.encodeInto(s, bytes.subarray(at + 4));
    view.setUint32(at, written, true);
    length = at + 4 + written;
  };
  const integer = (n) => {
    if (n >= LONG_MIN && n <= LONG_MAX) {
      tag(INT);
      const at = reserve(8);
      view.setBigInt64(at, n, true);
    } else {
      tag(BIG_INT);
      text(n.toString());
    }
  };
  const items = (t, xs) => {
    tag(t);
    u32(xs.length);
    for (const x of xs) add(x);
  };
  const add = (x) => {
    if (x === null || x === undefined) tag(NONE);
    else if (typeof x === 'boolean') tag(x ? TRUE : FALSE);
    else if (typeof x === 'bigint') integer(x);
    else if (typeof x === 'number' && Number.isInteger(x)) integer(BigInt(x));
    else if (typeof x === 'number') {
      tag(FLOAT);
      const at = reserve(8);
      view.setFloat64(at, x, true);
    } else if (typeof x === 'string') {
      tag(STR);
      text(x);
    } else if (x instanceof Uint8Array) {
      tag(BYTES);
      u32(x.length);
      const at = reserve(x.length);
      bytes.set(x, at);
    } else {
      const found = leaf(x);
      if ('tuple' in found) items(TUPLE, found.tuple);
      else if ('frozenset' in found) items(FROZENSET, found.frozenset);
      else if ('object' in found) {
        tag(OBJECT);
        const at = reserve(8);
        view.setBigUint64(at, BigInt(found.object.handle), true);
        text(found.object.className);
      } else {
        tag(NETREF);
        u32(found.netref);
      }
    }
  };
  add(item);
  return bytes.subarray(0, length);
}

/** The value the item in `packed` holds: None is `null`, an integer a
 * number when it is safe and a BigInt otherwise, a complex
 * `{ real, imag }`, a tuple an array, a frozenset a `Set`, bytes a
 * `Uint8Array`; a netref is `refs.netref(index)`, one of the service's
 * objects `refs.object(handle, className)` (the handle a BigInt). Throws an
 * Error saying why when `packed` is malformed. */
export function unpack(packed, refs) {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  let at = 0;
  const malformed = (why) => new Error(`malformed packed value: ${why}`);
  // Where the next `n` bytes are, checked against the end.
  const take = (n) => {
    if (n > packed.length - at) throw malformed(`${n} bytes at byte ${at} run past the end (${packed.length})`);
    at += n;
    return at - n;
  };
  const u32 = () => view.getUint32(take(4), true);
  const f64 = () => view.getFloat64(take(8), true);
  const text = () => {
    const n = u32();
    const start = take(n);
    try {
      return DECODER.decode(packed.subarray(start, start + n));
    } catch {
      throw malformed(`the text at byte ${start} is not UTF-8`);
    }
  };
  // Each item is at least a byte, so a count past what is left is refused
  // before anything is allocated.
  const items = (depth) => {
    const count = u32();
    if (count > packed.length - at) throw malformed(`${count} items cannot fit the ${packed.length - at} bytes left`);
    return Array.from({ length: count }, () => item(depth + 1));
  };
  const item = (depth) => {
    if (depth > MAX_DEPTH) throw malformed(`items nest deeper than ${MAX_DEPTH} levels`);
    const start = take(1);
    switch (packed[start]) {
      case NONE: return null;
      case FALSE: return false;
      case TRUE: return true;
      case INT: {
        const n = view.getBigInt64(take(8), true);
        return n >= SAFE_MIN && n <= SAFE_MAX ? Number(n) : n;
      }
      case BIG_INT: {
        const s = text();
        if (!/^-?[0-9]+$/.test(s)) throw malformed(`big-int ${JSON.stringify(s)} is not decimal`);
        return BigInt(s);
      }
      case FLOAT: return f64();
      case COMPLEX: {
        const real = f64();
        return { real, imag: f64() };
      }
      case STR: return text();
      case BYTES: {
        const n = u32();
        const from = take(n);
        return packed.slice(from, from + n);
      }
      case TUPLE: return items(depth);
      case FROZENSET: return new Set(items(depth));
      case NETREF: return refs.netref(u32());
      case OBJECT: {
        const handle = view.getBigUint64(take(8), true);
        return refs.object(handle, text());
      }
      default: throw malformed(`byte ${start} has unknown tag ${packed[start]}`);
    }
  };
  const value = item(0);
  if (at !== packed.length) throw malformed(`${packed.length - at} bytes follow the item`);
  return value;
}
