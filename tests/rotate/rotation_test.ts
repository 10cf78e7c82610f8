import assert from "node:assert/strict";
import {
  completeStep,
  decide,
  type Rotation,
  type RotationStep,
  startRotation,
} from "../../lib/rotate/rotation.ts";
import { editKeyTableLine, KeyTableEditError } from "../../lib/rotate/key_table_edit.ts";
import { readRotationState, writeRotationState } from "../../lib/rotate/state_file.ts";

const KEY = {
  keyName: "main",
  domain: "example.com",
  keyType: "rsa" as const,
  selector: "old",
  keyFile: "/keys/old.private",
};
const TIMING = { retireAfter: 100, deleteAfter: 1000, minimumRetire: 400 };

Deno.test("decide() and completeStep() walk a rotation through every step in order, gated by time after activation", () => {
  let r: Rotation = startRotation(KEY, "new", "/keys/new.private", 0);
  const seen: RotationStep[] = [];
  let now = 10;
  for (;;) {
    const d = decide(r, now, TIMING);
    if (d.kind === "done") break;
    if (d.kind === "wait") {
      assert.ok(d.until > now);
      now = d.until;
      continue;
    }
    seen.push(d.step);
    r = completeStep(r, d.step, now);
  }
  assert.deepEqual(seen, [
    "generate",
    "publish",
    "prove",
    "activate",
    "retire",
    "prove-revoked",
    "delete",
  ]);
  assert.equal(r.activatedAt, 10);
  // Retirement waited for the larger of RetireAfter and the minimum, deletion for DeleteAfter.
  assert.equal(now, 10 + 1000);
  assert.throws(() => completeStep(r, "publish", now), /the rotation is at "done"/);
});

Deno.test("editKeyTableLine() refuses another entry or a selector changed by hand, and repeats harmlessly", () => {
  const text = "main example.com:old:/keys/old.private:rsa-sha256\nother example.org:s:/k\n";
  const edit = {
    keyName: "main",
    domain: "example.com",
    fromSelector: "old",
    toSelector: "new",
    toKeyFile: "/keys/new.private",
  };
  const once = editKeyTableLine(text, "/kt", 1, edit);
  assert.equal(once, "main example.com:new:/keys/new.private:rsa-sha256\nother example.org:s:/k\n");
  assert.equal(editKeyTableLine(once, "/kt", 1, edit), once);
  assert.throws(
    () => editKeyTableLine(text, "/kt", 2, edit),
    (e) => e instanceof KeyTableEditError && /\/kt:2: expected the entry "main"/.test(e.message),
  );
  assert.throws(
    () => editKeyTableLine(text.replace(":old:", ":hand:"), "/kt", 1, edit),
    /has selector "hand", not "old" \(changed by hand\?\)/,
  );
});

Deno.test("readRotationState() reads what writeRotationState() wrote, and names the file of a bad one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state/rotation.json`;
    assert.deepEqual(await readRotationState(path), { version: 1, rotations: [] });
    const rotation = startRotation(KEY, "new", "/keys/new.private", 5);
    await writeRotationState(path, { version: 1, rotations: [rotation] });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    assert.deepEqual((await readRotationState(path)).rotations, [rotation]);
    assert.deepEqual([...Deno.readDirSync(`${dir}/state`)].map((e) => e.name), ["rotation.json"]);
    await Deno.writeTextFile(path, "{");
    await assert.rejects(readRotationState(path), new RegExp(`"${path}": not JSON`));
    await Deno.writeTextFile(
      path,
      JSON.stringify({ version: 1, rotations: [{ ...rotation, step: "dance" }] }),
    );
    await assert.rejects(readRotationState(path), /rotation 1 has an unknown step "dance"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
