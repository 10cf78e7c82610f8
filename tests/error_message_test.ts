import assert from "node:assert/strict";
import { errorDescription, errorMessage, fileErrorMessage } from "../lib/error_message.ts";

class CustomError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CustomError";
  }
}

/** Values whose String() throws: they must still be described. */
const unshowable: [string, unknown][] = [
  ["a null-prototype object", Object.create(null)],
  ["an object whose toString throws", {
    toString: () => {
      throw new Error("no");
    },
  }],
  ["an object whose toPrimitive throws", {
    [Symbol.toPrimitive]: () => {
      throw new Error("no");
    },
  }],
];

Deno.test("errorMessage() gives an Error's message, and any other value as text, never throwing", () => {
  const cases: [unknown, string][] = [
    [new Error("plain"), "plain"],
    [new RangeError("too big"), "too big"],
    [new CustomError("custom"), "custom"],
    [new Error(""), ""],
    [new Deno.errors.NotFound("open '/x'"), "open '/x'"],
    ["a string", "a string"],
    [42, "42"],
    [undefined, "undefined"],
    [null, "null"],
    [Symbol("s"), "Symbol(s)"],
    [{ toString: () => "shown" }, "shown"],
  ];
  for (const [value, want] of cases) assert.equal(errorMessage(value), want, want);
  for (const [what, value] of unshowable) {
    assert.equal(errorMessage(value), "a value that cannot be shown", what);
  }
});

Deno.test("errorDescription() gives an Error's name and message, and any other value as text", () => {
  const cases: [unknown, string][] = [
    [new TypeError("x is not a function"), "TypeError: x is not a function"],
    [new CustomError("custom"), "CustomError: custom"],
    [new Deno.errors.PermissionDenied("open"), "PermissionDenied: open"],
    ["a string", "a string"],
    [undefined, "undefined"],
  ];
  for (const [value, want] of cases) assert.equal(errorDescription(value), want, want);
  for (const [what, value] of unshowable) {
    assert.equal(errorDescription(value), "a value that cannot be shown", what);
  }
});

Deno.test("fileErrorMessage() says strerror(3)'s words for a missing file and a denied one", () => {
  const cases: [unknown, string][] = [
    [new Deno.errors.NotFound("open '/etc/x'"), "no such file or directory"],
    [new Deno.errors.PermissionDenied("open '/etc/x'"), "permission denied"],
    [new Deno.errors.IsADirectory("read '/etc'"), "read '/etc'"],
    [new Error("larger than 10 bytes"), "larger than 10 bytes"],
    ["a string", "a string"],
    [Object.create(null), "a value that cannot be shown"],
  ];
  for (const [value, want] of cases) assert.equal(fileErrorMessage(value), want, want);
});
