// The core's size as a user's bundler would ship it: dist/index.js bundled and
// minified by esbuild, then gzipped (the `esbuild --minify | gzip -c | wc -c` figure).
// Prints the bytes of the core and of the React entry; exits 1 past LIMIT.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

export const LIMIT = 6144;
const root = fileURLToPath(new URL("..", import.meta.url));

/** The minified bundle of `entry` (React left out), as text. */
export async function bundle(entry) {
  const out = await build({ entryPoints: [root + entry], bundle: true, minify: true, format: "esm", write: false, external: ["react"], logLevel: "silent" });
  return out.outputFiles[0].text;
}

/** Its gzipped bytes (zlib's default level, gzip's too). */
export const gzipped = async (entry) => gzipSync(await bundle(entry)).length;

if (process.argv[1] == fileURLToPath(import.meta.url)) {
  const core = await gzipped("dist/index.js");
  const react = await gzipped("dist/react.js");
  console.log(`size: core ${core} bytes min+gzip (limit ${LIMIT}); react entry ${react} bytes (react external)`);
  if (core > LIMIT) process.exit(1);
}
