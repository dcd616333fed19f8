// What the deployed functions are declared with (their endpoint, as `firebase deploy` reads it): the
// settings the capacity model (docs/capacity.md) rests on.
import { describe, expect, it } from "vitest";

describe("the chunk worker's deployment", () => {
  it("runs one delivery per instance on a core of its own, as the capacity model assumes", async () => {
    const { backfillChunk } = await import("../../functions/src/index");
    const endpoint = (
      backfillChunk as unknown as { __endpoint: { concurrency: unknown; cpu: unknown; timeoutSeconds: unknown } }
    ).__endpoint;
    expect(endpoint).toMatchObject({ concurrency: 1, cpu: 1, timeoutSeconds: 1800 });
  });
});
