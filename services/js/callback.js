// The seed's callback ServerService, as a JavaScript class: a function
// passed as an argument arrives as a function, and `bar` calls it back.

export class ServerService {
  exposed_bar(func) {
    const foo = func();
    // Python's `func() + "bar"` refuses what is not a string.
    if (typeof foo !== 'string') throw new TypeError(`can only concatenate str (not "${typeof foo}") to str`);
    return foo + 'bar';
  }
}
