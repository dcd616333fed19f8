// docs/data-model.md cannot drift (issue 19): every field of a run and of a chunk document is in it, the
// fields read from the interfaces in functions/src itself, so a new field without its doc fails here.
import { describe, expect, it } from "vitest";
import { readRepoFile } from "../../support/repo";

/** The fields of an exported interface, as declared (one per line). */
function fieldsOf(path: string, name: string): string[] {
  const source = readRepoFile(path);
  const start = source.search(new RegExp(`export interface ${name}( extends [A-Za-z, ]+)? \\{`));
  if (start < 0) throw new Error(`${path} has no interface ${name}`);
  const body = source.slice(start, source.indexOf("\n}\n", start));
  return [...body.matchAll(/^ {2}([a-zA-Z]+)\??:/gm)].map((m) => m[1] as string);
}

describe("docs/data-model.md", () => {
  it("names every field of a run and of a chunk", () => {
    const doc = readRepoFile("docs/data-model.md");
    for (const [path, name] of [
      ["functions/src/core/run.ts", "Run"],
      ["functions/src/core/chunk.ts", "Chunk"],
    ] as const) {
      const fields = fieldsOf(path, name).filter((f) => f !== "id");
      expect(fields.length, name).toBeGreaterThan(15);
      expect(
        fields.filter((f) => !doc.includes(`\`${f}\``)),
        `${name} fields missing from docs/data-model.md`,
      ).toEqual([]);
    }
  });
});
