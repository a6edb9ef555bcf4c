// Binds a peer's call to a JavaScript function as Python binds it.
//
// An RPyC client calls `conn.root.add(2, b=5)`: positional and keyword
// arguments, and Python's `TypeError` when they do not fit. JavaScript has
// no keyword arguments and ignores extra or missing ones, so the SDK reads
// the parameter names from the function's source and binds the call itself:
// keywords by name, defaults (`b = 5`) and a rest parameter (`...args`) as
// Python's defaults and `*args`, and Python's own `TypeError` texts for too
// many, missing, repeated or unknown arguments. A function whose source is
// not JavaScript (a builtin) takes positional arguments only.

import { ServiceError } from './wasm-rpyc-guest.js';

const IDENTIFIER = /^[A-Za-z_$][\w$]*/;
const OPENING = { '(': ')', '[': ']', '{': '}' };
const CLOSING = new Set([')', ']', '}']);

/** The index just past the string, template or comment starting at `at`,
 * or `at` when none starts there. */
function skipLiteral(source, at) {
  const c = source[at];
  if (c === '/' && source[at + 1] === '/') {
    const end = source.indexOf('\n', at);
    return end < 0 ? source.length : end;
  }
  if (c === '/' && source[at + 1] === '*') {
    const end = source.indexOf('*/', at + 2);
    return end < 0 ? source.length : end + 2;
  }
  if (c !== "'" && c !== '"' && c !== '`') return at;
  for (let i = at + 1; i < source.length; i += 1) {
    if (source[i] === '\\') i += 1;
    else if (source[i] === c) return i + 1;
  }
  return source.length;
}

/** The parameters in the list opening at `source[open]` (a `(`). */
function parameterList(source, open) {
  const params = [];
  let depth = 0;
  let start = open + 1;
  let hasDefault = false;
  const close = (end) => {
    const text = source.slice(start, end).trim();
    if (text !== '') params.push(parameter(text, hasDefault));
    start = end + 1;
    hasDefault = false;
  };
  for (let i = open + 1; i < source.length;) {
    const past = skipLiteral(source, i);
    if (past !== i) {
      i = past;
      continue;
    }
    const c = source[i];
    if (c in OPENING) depth += 1;
    else if (CLOSING.has(c)) {
      if (depth === 0) {
        close(i);
        return params;
      }
      depth -= 1;
    } else if (depth === 0 && c === ',') close(i);
    else if (depth === 0 && c === '=' && source[i + 1] !== '>') hasDefault = true;
    i += 1;
  }
  return null;
}

/** One parameter's text as `{ name, hasDefault, rest }`; a destructuring
 * pattern has no name (it is filled by position only). */
function parameter(written, hasDefault) {
  const text = written.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '').trim();
  const rest = text.startsWith('...');
  const name = (rest ? text.slice(3).trim() : text).match(IDENTIFIER)?.[0] ?? null;
  return { name, hasDefault, rest };
}

/** Where the constructor's parameter list of class source `source` opens. */
function constructorOpening(source) {
  const found = /\bconstructor\s*\(/.exec(source);
  return found ? found.index + found[0].length - 1 : -1;
}

const SIGNATURES = new WeakMap();

/** The parameters of `fn`, or `null` when its source is not JavaScript. */
function signature(fn) {
  if (SIGNATURES.has(fn)) return SIGNATURES.get(fn);
  const source = Function.prototype.toString.call(fn);
  let params = null;
  if (!source.includes('[native code]')) {
    if (/^class[\s{]/.test(source)) {
      const open = constructorOpening(source);
      const parent = Object.getPrototypeOf(fn);
      if (open >= 0) params = parameterList(source, open);
      else params = parent === Function.prototype ? [] : signature(parent);
    } else {
      // `x => ...` and `async x => ...` have no parentheses.
      const bare = source.replace(/^async\s+/, '').match(/^([A-Za-z_$][\w$]*)\s*=>/);
      params = bare ? [{ name: bare[1], hasDefault: false, rest: false }] : parameterList(source, source.indexOf('('));
    }
  }
  SIGNATURES.set(fn, params);
  return params;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Python's listing of names: `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`. */
function listing(names) {
  const quoted = names.map((n) => `'${n}'`);
  if (quoted.length < 3) return quoted.join(' and ');
  return `${quoted.slice(0, -1).join(', ')}, and ${quoted.at(-1)}`;
}

/** The arguments to call `fn` (the peer's `name`; `fn.unbound` is the
 * function a bound `fn` calls) with, bound from the
 * peer's positional `args` and `kwargs` (`[key, value]` pairs) as Python
 * binds them; a call that does not fit throws Python's `TypeError`. */
export function bind(fn, name, args, kwargs) {
  const params = signature(fn.unbound ?? fn);
  const typeError = (message) => new ServiceError('TypeError', `${name}() ${message}`);
  if (params === null) {
    if (kwargs.length > 0) throw typeError('takes no keyword arguments');
    return args;
  }
  const positional = params.filter((p) => !p.rest);
  const rest = params.some((p) => p.rest);
  if (args.length > positional.length && !rest) {
    const least = positional.filter((p) => !p.hasDefault).length;
    const takes = least === positional.length
      ? plural(positional.length, 'positional argument')
      : `from ${least} to ${positional.length} positional arguments`;
    throw typeError(`takes ${takes} but ${args.length} ${args.length === 1 ? 'was' : 'were'} given`);
  }
  const bound = args.slice(0, positional.length);
  const given = positional.map((_, i) => i < args.length);
  for (const [key, value] of kwargs) {
    const at = positional.findIndex((p) => p.name === key);
    if (at < 0) throw typeError(`got an unexpected keyword argument '${key}'`);
    if (given[at]) throw typeError(`got multiple values for argument '${key}'`);
    bound[at] = value;
    given[at] = true;
  }
  const missing = positional.filter((p, i) => !given[i] && !p.hasDefault).map((p) => p.name ?? 'argument');
  if (missing.length > 0) {
    throw typeError(`missing ${plural(missing.length, 'required positional argument')}: ${listing(missing)}`);
  }
  // A parameter left out takes its default: JavaScript's for `undefined`.
  return rest ? [...bound, ...args.slice(positional.length)] : bound;
}
