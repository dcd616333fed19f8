// Firestore holds a collection to about 500 writes per second while an indexed field of it increases with
// every write (a server timestamp): the index's newest entries all land on one tablet. Every such field the
// product writes and never queries is exempt from single-field indexing in firestore.indexes.json; the ones
// it must query are listed with their write rate in docs/capacity.md. This test is the list.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../support/repo";

const root = repoRoot;
const config = JSON.parse(readFileSync(join(root, "firestore.indexes.json"), "utf8")) as {
  indexes: Array<{ collectionGroup: string; fields: Array<{ fieldPath: string }> }>;
  fieldOverrides: Array<{ collectionGroup: string; fieldPath: string; indexes: unknown[]; ttl?: boolean }>;
};

/** Fields the product writes with the time of the write, per collection (docs/data-model.md). */
const SEQUENTIAL_WRITES: Array<[collection: string, field: string, queried: boolean]> = [
  ["webhookEvents", "createdAt", true], // runs select their range on it; written once, by the receiver
  ["webhookEvents", "processedAt", false],
  ["webhookEvents", "dryRunAt", false],
  ["ledgerEntries", "createdAt", false],
  ["shadowLedger", "createdAt", false],
  ["wallets", "updatedAt", false],
  ["chunks", "updatedAt", false],
  ["errors", "at", false],
  ["dataMigrations", "updatedAt", false],
  ["dataMigrations", "createdAt", true], // the run list; one write per run
  ["pages", "at", true], // the chart and the auto-pause window; one write per page
];

/** Fields no query reads and whose values are large: indexing them costs writes for nothing. */
const UNQUERIED_LARGE: Array<[string, string]> = [
  ["pages", "outcomes"],
  ["webhookEvents", "countedIn"], // a map of run ids: every run would add a field index per event
  ["ledgerOrders", "lines"],
  ["shadowOrders", "lines"],
];

const exempt = (collection: string, field: string) =>
  config.fieldOverrides.some(
    (o) => o.collectionGroup === collection && o.fieldPath === field && o.indexes.length === 0,
  );

/** Every `where`/`orderBy` field in the functions' source (a query on an exempt field fails in production). */
function queriedFields(): Set<string> {
  const out = new Set<string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (path.endsWith(".ts"))
        for (const m of readFileSync(path, "utf8").matchAll(/\.(?:where|orderBy)\("([A-Za-z_.]+)"/g))
          out.add(m[1] as string);
    }
  };
  walk(join(root, "functions", "src"));
  return out;
}

describe("index exemptions (firestore.indexes.json)", () => {
  it.each(SEQUENTIAL_WRITES.filter(([, , q]) => !q))(
    "exempts %s.%s, a write-time field no query reads",
    (collection, field) => {
      expect(exempt(collection, field)).toBe(true);
    },
  );

  it.each(UNQUERIED_LARGE)("exempts %s.%s, a large field no query reads", (collection, field) => {
    expect(exempt(collection, field)).toBe(true);
  });

  it.each(SEQUENTIAL_WRITES.filter(([, , q]) => q))(
    "keeps %s.%s indexed: a query needs it, and docs/capacity.md names its limit",
    (collection, field) => {
      expect(exempt(collection, field)).toBe(false);
      expect(readFileSync(join(root, "docs", "capacity.md"), "utf8")).toContain(`${collection}.${field}`);
    },
  );

  it("exempts nothing a query of the functions filters or sorts on in the same collection", () => {
    const queried = queriedFields();
    // Fields whose name a query uses on another collection only (checked by hand; see SEQUENTIAL_WRITES).
    const elsewhere = new Set(["ledgerEntries/createdAt", "shadowLedger/createdAt", "errors/at"]);
    for (const o of config.fieldOverrides.filter((x) => x.indexes.length === 0 && !x.ttl)) {
      if (elsewhere.has(`${o.collectionGroup}/${o.fieldPath}`)) continue;
      expect(queried.has(o.fieldPath), `${o.collectionGroup}.${o.fieldPath} is exempt but queried`).toBe(false);
    }
    // A composite index is not affected by a single-field exemption: `ledgerEntries (userId, createdAt)`
    // serves the game's apps and, led by userId, is no hotspot. No composite index leads with an exempt field.
    for (const index of config.indexes) {
      const lead = index.fields[0]?.fieldPath as string;
      expect(exempt(index.collectionGroup, lead), `${index.collectionGroup} (${lead}, …)`).toBe(false);
    }
  });
});
