// One writer per collection (issue 19): docs/architecture.md's "Who writes what" names the one module
// that writes each collection, and no other file in functions/src calls a Firestore write. Read from the
// code itself: a new collection without its row, or a write outside its store, fails here.
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { readRepoFile, repoRoot } from "../../support/repo";
import { COLLECTIONS, RUN_SUBCOLLECTIONS } from "../../../functions/src/platform/collections";

const root = repoRoot;
const read = readRepoFile;

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    return statSync(join(root, path)).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

/** The table's rows: each collection named in the first cell, with the module in the second. */
function writerTable(): Array<{ collections: string[]; module: string | null }> {
  const doc = read("docs/architecture.md");
  const section = doc.slice(
    doc.indexOf("### Who writes what"),
    doc.indexOf("\n## ", doc.indexOf("### Who writes what")),
  );
  return section
    .split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) => {
      const [first, second] = line.split("|").slice(1, 3) as [string, string];
      return {
        collections: [...first.matchAll(/`([^`]+)`/g)].map((m) =>
          (m[1] as string).replace(/^dataMigrations\/\{id\}\//, ""),
        ),
        module: /`(functions\/src\/[^`]+)`/.exec(second)?.[1] ?? null,
      };
    });
}

const strip = (source: string) => source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");

/**
 * Firestore writes: `create`, `set`, `update`, `delete` or `add` called on a document or collection
 * reference (`.doc(…)`, a `ref`, a `collection(…)`, a `refs(db).x`) or on a batch, transaction or writer. Maps, sets,
 * hashes, HTTP responses and the task queue have receivers of other names.
 */
const WRITE =
  /(?:refs\([^()]*\)\.\w+|\.doc\([^()]*\)|\bref\w*|\bRef\w*|\.collection\([^()]*\)|\bbatch|\btx|\btransaction|\bwriter)\s*\.(?:create|set|update|delete|add)\(/;

function writingFiles(): string[] {
  return sources("functions/src").filter((path) => WRITE.test(strip(read(path))));
}

describe("one writer per collection", () => {
  it("the table names a writer for every collection in platform/collections.ts", () => {
    const named = new Set(writerTable().flatMap((row) => row.collections));
    const collections = [...Object.values(COLLECTIONS), ...Object.values(RUN_SUBCOLLECTIONS)];
    expect(collections.filter((c) => !named.has(c))).toEqual([]);
  });

  it("only the table's modules write to Firestore", () => {
    const writers = new Set(writerTable().flatMap((row) => (row.module ? [row.module] : [])));
    expect(writingFiles().filter((path) => !writers.has(path))).toEqual([]);
    // And the check sees writes where they are: every store in the table writes.
    expect([...writers].filter((path) => !writingFiles().includes(path))).toEqual([]);
  });

  it("each store is the only module of functions/src that names its collection's reference", () => {
    // Every accessor of platform/collections.ts' refs() that a store owns, and the store that owns it.
    const owners: Record<string, string> = {
      pages: "functions/src/store/pages.ts",
      errors: "functions/src/store/errors.ts",
      report: "functions/src/store/reportCache.ts",
    };
    for (const [accessor, owner] of Object.entries(owners)) {
      const users = sources("functions/src").filter(
        (path) => new RegExp(`\\.${accessor}\\(`).test(strip(read(path))) && /refs\(/.test(read(path)),
      );
      expect(
        users.map((p) => relative(root, join(root, p))),
        accessor,
      ).toEqual([owner]);
    }
  });
});
