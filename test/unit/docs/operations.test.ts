// docs/operations.md cannot drift (issue 19): every log event the functions write is in it, the list read
// from functions/src/log.ts itself, so a new event without its doc fails here.
import { describe, expect, it } from "vitest";
import { readRepoFile } from "../../support/repo";

/** The log events functions/src/log.ts writes: every `event:` value, and the names it picks them from. */
function logEvents(): string[] {
  const source = readRepoFile("functions/src/log.ts");
  const names = new Set<string>();
  for (const line of source.split("\n")) {
    if (!/event|events\b/.test(line)) continue;
    for (const m of line.matchAll(/"([a-z]+(?:_[a-z]+)+)"/g)) names.add(m[1] as string);
  }
  return [...names].sort();
}

describe("docs/operations.md", () => {
  it("names every log event", () => {
    const doc = readRepoFile("docs/operations.md");
    const events = logEvents();
    expect(events.length).toBeGreaterThan(15);
    expect(events.filter((e) => !doc.includes(`\`${e}\``))).toEqual([]);
  });
});
