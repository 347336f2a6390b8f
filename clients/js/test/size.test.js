// The core stays under 6 KiB minified and gzipped, with no runtime dependency.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { bundle, gzipped, LIMIT } from "../scripts/size.js";

test(`the core is at most ${LIMIT} bytes minified + gzipped`, async (t) => {
  const bytes = await gzipped("dist/index.js");
  t.diagnostic(`core: ${bytes} bytes`);
  assert.ok(bytes <= LIMIT, `${bytes} bytes > ${LIMIT}`);
});

test("no runtime dependencies; React only an optional peer", async () => {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url)));
  assert.equal(pkg.dependencies, undefined);
  assert.equal(pkg.peerDependenciesMeta.react.optional, true);
  assert.doesNotMatch(await bundle("dist/index.js"), /from"react"|require\(/, "the core imports nothing");
  assert.match(await bundle("dist/react.js"), /from"react"/);
});
