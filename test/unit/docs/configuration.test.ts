// docs/configuration.md cannot drift (issue 19): every setting the functions read is in it, the list read
// from functions/src/config.ts itself, so a new setting without its doc fails here.
import { describe, expect, it } from "vitest";
import { readRepoFile } from "../../support/repo";

/** The settings functions/src/config.ts reads: the keys of its environment schema. */
function settings(): string[] {
  const source = readRepoFile("functions/src/config.ts");
  return [...source.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1] as string).sort();
}

describe("docs/configuration.md", () => {
  it("names every setting", () => {
    const doc = readRepoFile("docs/configuration.md");
    const keys = settings();
    expect(keys.length).toBeGreaterThan(20);
    expect(keys.filter((k) => !doc.includes(`\`${k}\``))).toEqual([]);
  });
});
