// Layers (issue 19): a module calls only into its own layer or the layers below it, so no layer calls back
// into one that calls it (`chunks/` ↔ `runs/` and `jobs/` (now `start/`) ↔ `runs/` did). Type-only imports are not calls:
// the wire format's types (http/schemas.ts) are shared by every layer that answers in it.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../support/repo";

const src = join(repoRoot, "functions", "src");

/** Lowest first, as docs/architecture.md lists them; top-level files are named by their file. */
const LAYERS = [
  ["core"],
  ["errors", "params", "config", "memory", "log", "deps"],
  ["platform"],
  ["store", "auth"],
  ["runtime", "ledger"],
  ["runs"],
  ["chunks", "start", "webhooks"],
  ["http"],
  ["index"],
];
const rank = (layer: string) => {
  const i = LAYERS.findIndex((names) => names.includes(layer));
  if (i < 0)
    throw new Error(
      `functions/src/${layer} is in no layer of test/unit/docs/architecture.layers.test.ts; add it where it belongs`,
    );
  return i;
};
const layerOf = (path: string) => (path.includes("/") ? path.slice(0, path.indexOf("/")) : path.replace(/\.ts$/, ""));

function files(dir = ""): string[] {
  return readdirSync(join(src, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

/** The functions/src modules a file imports values from (not `import type`, not `type` specifiers only). */
function valueImports(file: string): string[] {
  const source = readFileSync(join(src, file), "utf8");
  return [...source.matchAll(/^import\s+(type\s+)?([^;]*?)\s+from\s+"(\.[^"]+)";/gm)]
    .filter((m) => !m[1] && !/^\{\s*(type\s+[\w$]+\s*,?\s*)+\}$/.test((m[2] as string).trim()))
    .map((m) => relative(src, normalize(join(src, dirname(file), m[3] as string))));
}

describe("layers", () => {
  it("no module of functions/src calls into a layer above its own", () => {
    const upward: string[] = [];
    for (const file of files()) {
      for (const target of valueImports(file)) {
        if (rank(layerOf(target)) > rank(layerOf(file))) upward.push(`${file} → ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
