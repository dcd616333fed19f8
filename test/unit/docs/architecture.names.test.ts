// One word per thing (issue 19): no two modules of functions/src export the same name, so a reader never
// meets one name for two things and no import needs an alias to tell them apart (core/chunk.ts and
// core/run.ts both exported `cancel`, `resume`, `retry` and `Transition`; core/run.ts and core/compare.ts
// both `RunFacts`).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../support/repo";

const root = repoRoot;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("exported names in functions/src", () => {
  it("are each exported by one module, and imported without an alias", () => {
    const owners = new Map<string, string[]>();
    const aliased: string[] = [];
    for (const path of sources(join(root, "functions", "src"))) {
      const file = relative(root, path);
      const text = readFileSync(path, "utf8");
      for (const m of text.matchAll(
        /^export (?:async )?(?:function|const|class|interface|type|enum) ([A-Za-z_$][\w$]*)/gm,
      )) {
        owners.set(m[1] as string, [...(owners.get(m[1] as string) ?? []), file]);
      }
      for (const m of text.matchAll(/^import (?:type )?\{([^}]*)\} from "\.[^"]*"/gm)) {
        for (const part of (m[1] as string).split(","))
          if (/\sas\s/.test(part)) aliased.push(`${file}: ${part.trim()}`);
      }
    }
    expect([...owners].filter(([, files]) => files.length > 1)).toEqual([]);
    expect(aliased).toEqual([]);
  });
});
