// Docs that cannot drift (issue 19): every log event the functions write is in docs/operations.md, every
// setting the functions read is in docs/configuration.md, and every field of a run and a chunk document is
// in docs/data-model.md. Each list is read from the code itself, so a new event, setting or field without
// its doc fails here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(__dirname, "..", "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

/** The log events functions/src/log.ts writes: every `event:` value, and the names it picks them from. */
function logEvents(): string[] {
  const source = read("functions/src/log.ts");
  const names = new Set<string>();
  for (const line of source.split("\n")) {
    if (!/event|events\b/.test(line)) continue;
    for (const m of line.matchAll(/"([a-z]+(?:_[a-z]+)+)"/g)) names.add(m[1] as string);
  }
  return [...names].sort();
}

/** The settings functions/src/config.ts reads: the keys of its environment schema. */
function settings(): string[] {
  const source = read("functions/src/config.ts");
  return [...source.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1] as string).sort();
}

/** The fields of an exported interface, as declared (one per line). */
function fieldsOf(path: string, name: string): string[] {
  const source = read(path);
  const start = source.search(new RegExp(`export interface ${name}( extends [A-Za-z, ]+)? \\{`));
  if (start < 0) throw new Error(`${path} has no interface ${name}`);
  const body = source.slice(start, source.indexOf("\n}\n", start));
  return [...body.matchAll(/^ {2}([a-zA-Z]+)\??:/gm)].map((m) => m[1] as string);
}

describe("docs that cannot drift", () => {
  it("docs/operations.md names every log event", () => {
    const doc = read("docs/operations.md");
    const events = logEvents();
    expect(events.length).toBeGreaterThan(15);
    expect(events.filter((e) => !doc.includes(`\`${e}\``))).toEqual([]);
  });

  it("docs/configuration.md names every setting", () => {
    const doc = read("docs/configuration.md");
    const keys = settings();
    expect(keys.length).toBeGreaterThan(20);
    expect(keys.filter((k) => !doc.includes(`\`${k}\``))).toEqual([]);
  });

  it("docs/data-model.md names every field of a run and of a chunk", () => {
    const doc = read("docs/data-model.md");
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
