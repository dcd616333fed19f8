// test/README.md's rule (issue 19): every test file's path names what it tests. `test/unit/P.test.ts` and
// `test/emulator/P.test.ts` test `functions/src/P.ts`, or the repository's own `P.ts`, `P.md`, `P.json` or
// `P` (a script, the console, a document, a config file); an aspect after a dot (`core/estimate.pace`,
// `chunks/worker.faults`) keeps the module's name in front. Read from the tree, so a test file named by
// behaviour alone fails here.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../support/repo";

function testFiles(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testFiles(join(dir, e.name)) : e.name.endsWith(".test.ts") ? [join(dir, e.name)] : [],
  );
}

/** What `test/<kind>/<stem>.test.ts` may name: the stem, then the stem without each trailing `.aspect`. */
function named(stem: string): string | undefined {
  for (let s = stem; ; s = s.slice(0, s.lastIndexOf("."))) {
    const found = [`functions/src/${s}.ts`, `${s}.ts`, `${s}.md`, `${s}.json`, s].find((p) =>
      existsSync(join(repoRoot, p)),
    );
    if (found) return found;
    if (!s.includes(".")) return undefined;
  }
}

describe("test/README.md's naming rule", () => {
  it("every test file's path names the module, script, document or config file it tests", () => {
    const files = ["test/unit", "test/emulator"].flatMap((kind) =>
      testFiles(kind).map((file) => ({ file, stem: file.slice(kind.length + 1, -".test.ts".length) })),
    );
    expect(files.length).toBeGreaterThan(50);
    expect(files.filter((f) => !named(f.stem)).map((f) => f.file)).toEqual([]);
  });
});
