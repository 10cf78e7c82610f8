import assert from "node:assert/strict";
import { type DomainClass, domainClass } from "../../lib/filter/observer.ts";

Deno.test("domainClass() says how d= stands to the From domain, as DMARC's relaxed alignment", () => {
  const cases: [string | undefined, string | undefined, DomainClass][] = [
    ["example.com", "example.com", "author"],
    ["EXAMPLE.com.", "example.COM", "author"],
    ["example.com", "mail.example.com", "author"],
    ["example.com", "a.b.example.com.", "author"],
    ["mail.example.com", "example.com", "third-party"],
    ["ample.com", "example.com", "third-party"],
    ["list.example.org", "example.com", "third-party"],
    ["com", "example.com", "author"],
    [undefined, "example.com", "none"],
    ["example.com", undefined, "none"],
    ["", "example.com", "none"],
    [".", "example.com", "none"],
    ["example.com", ".", "none"],
  ];
  for (const [signing, author, want] of cases) {
    assert.equal(domainClass(signing, author), want, `${signing} for ${author}`);
  }
});
