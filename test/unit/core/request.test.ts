import { describe, expect, it } from "vitest";
import { parseStartRun } from "../../../functions/src/core/request";

const valid = { type: "webhook_replay", startDate: "2025-01-01", endDate: "2025-01-10" };
const options = { maxRangeDays: 366, defaultMaxErrorRate: 0.05, now: new Date("2025-03-01T03:00:00Z") };

describe("start-job request validation", () => {
  it("fills the safe defaults: dry run on, 1000 events", () => {
    expect(parseStartRun(valid, options)).toEqual({
      ok: true,
      value: {
        ...valid,
        lookbackDays: null,
        dryRun: true,
        maxEvents: 1000,
        maxErrorRate: 0.05,
        maxEventsPerSecond: null,
        userIds: null,
      },
    });
  });

  const bad: Array<[string, unknown, string, RegExp]> = [
    ["a non-object body", [1, 2], "body", /JSON object/],
    ["null", null, "body", /JSON object/],
    ["an unknown type", { ...valid, type: "refund_all" }, "type", /one of "webhook_replay", "reversal_backfill"/],
    ["a missing startDate", { type: "webhook_replay", endDate: "2025-01-10" }, "startDate", /YYYY-MM-DD/],
    ["an impossible date", { ...valid, startDate: "2025-02-30" }, "startDate", /real calendar date/],
    ["a non-leap 29 February", { ...valid, startDate: "2025-02-29" }, "startDate", /real calendar date/],
    ["a date with a time", { ...valid, endDate: "2025-01-10T00:00:00Z" }, "endDate", /YYYY-MM-DD/],
    [
      "an end before the start",
      { ...valid, startDate: "2025-01-10", endDate: "2025-01-01" },
      "endDate",
      /not be before startDate/,
    ],
    [
      "a range over the limit",
      { ...valid, startDate: "2024-01-01", endDate: "2025-01-01" },
      "endDate",
      /367 days.*at most 366/,
    ],
    ["dryRun as a string", { ...valid, dryRun: "false" }, "dryRun", /true or false/],
    ["maxEvents zero", { ...valid, maxEvents: 0 }, "maxEvents", /1 to 100000/],
    ["maxEvents fractional", { ...valid, maxEvents: 1.5 }, "maxEvents", /integer/],
    ["maxEvents too large", { ...valid, maxEvents: 100_001 }, "maxEvents", /1 to 100000/],
    ["maxEvents as a string", { ...valid, maxEvents: "10" }, "maxEvents", /integer/],
    ["an unknown field", { ...valid, userId: "u1" }, "userId", /not a known field \(known fields: type, startDate/],
    [
      "a missing endDate",
      { type: "webhook_replay", startDate: "2025-01-01" },
      "endDate",
      /required .* unless you give lookbackDays/,
    ],
    ["dates and lookbackDays together", { ...valid, lookbackDays: 2 }, "lookbackDays", /not both/],
    ["lookbackDays zero", { type: "webhook_replay", lookbackDays: 0 }, "lookbackDays", /at least 1/],
    ["lookbackDays over the range limit", { type: "webhook_replay", lookbackDays: 400 }, "lookbackDays", /at most 366/],
    ["maxErrorRate above 1", { ...valid, maxErrorRate: 5 }, "maxErrorRate", /from 0 to 1/],
    ["maxEventsPerSecond zero", { ...valid, maxEventsPerSecond: 0 }, "maxEventsPerSecond", /integer from 1 to 10000/],
    [
      "maxEventsPerSecond a fraction",
      { ...valid, maxEventsPerSecond: 1.5 },
      "maxEventsPerSecond",
      /integer from 1 to 10000/,
    ],
    [
      "maxEventsPerSecond a string",
      { ...valid, maxEventsPerSecond: "200" },
      "maxEventsPerSecond",
      /integer from 1 to 10000/,
    ],
  ];

  it("turns lookbackDays into the trailing window that ends today (UTC)", () => {
    const result = parseStartRun({ type: "webhook_replay", lookbackDays: 3, maxErrorRate: 0.2 }, options);
    expect(result).toMatchObject({
      ok: true,
      value: { startDate: "2025-02-27", endDate: "2025-03-01", lookbackDays: 3, maxErrorRate: 0.2 },
    });
  });

  it.each(bad)("rejects %s, naming the field", (_name, body, field, message) => {
    const result = parseStartRun(body, options);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const problem = result.problems.find((p) => p.field === field);
    expect(problem?.message).toMatch(message);
  });

  it("lists every bad field at once", () => {
    const result = parseStartRun({ type: "x", startDate: "nope", maxEvents: -1 }, options);
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.problems.map((p) => p.field).sort()).toEqual(["endDate", "maxEvents", "startDate", "type"]);
  });
});

describe("start-job request edges", () => {
  const problems = (body: unknown) => {
    const r = parseStartRun(body, options);
    return r.ok ? [] : r.problems;
  };

  it("accepts the limits themselves", () => {
    expect(parseStartRun({ type: "webhook_replay", lookbackDays: 366 }, options).ok).toBe(true);
    expect(parseStartRun({ ...valid, startDate: "2024-01-01", endDate: "2024-12-31" }, options).ok).toBe(true);
    expect(parseStartRun({ ...valid, startDate: "2025-01-10", endDate: "2025-01-10" }, options).ok).toBe(true);
    expect(parseStartRun({ ...valid, maxEvents: 100_000, maxErrorRate: 0 }, options)).toMatchObject({
      ok: true,
      value: { maxEvents: 100_000, maxErrorRate: 0 },
    });
    expect(parseStartRun({ ...valid, maxErrorRate: 1, dryRun: false }, options)).toMatchObject({
      ok: true,
      value: { maxErrorRate: 1, dryRun: false },
    });
    expect(parseStartRun({ ...valid, maxEventsPerSecond: 1 }, options)).toMatchObject({
      ok: true,
      value: { maxEventsPerSecond: 1 },
    });
    expect(parseStartRun({ ...valid, maxEventsPerSecond: 10_000 }, options)).toMatchObject({
      ok: true,
      value: { maxEventsPerSecond: 10_000 },
    });
  });

  it("refuses a window given both ways, whichever date comes with it", () => {
    for (const extra of [{ startDate: "2025-01-01" }, { endDate: "2025-01-01" }]) {
      expect(problems({ type: "webhook_replay", lookbackDays: 2, ...extra })).toEqual([
        { field: "lookbackDays", message: "give either startDate and endDate, or lookbackDays, not both" },
      ]);
    }
  });

  it("names each missing date, and each once", () => {
    expect(problems({ type: "webhook_replay" })).toEqual([
      { field: "startDate", message: "startDate is required (YYYY-MM-DD), unless you give lookbackDays" },
      { field: "endDate", message: "endDate is required (YYYY-MM-DD), unless you give lookbackDays" },
    ]);
    // A wrong type and a missing range are reported together.
    expect(problems({ type: "nope" }).map((p) => p.field)).toEqual(["type", "startDate", "endDate"]);
    // A date that is present but wrong is named once, for what is wrong with it.
    expect(problems({ type: "nope", startDate: "x" }).filter((p) => p.field === "startDate")).toEqual([
      { field: "startDate", message: "startDate must be a real calendar date written YYYY-MM-DD (UTC)" },
    ]);
    // With lookbackDays, a missing range is not a problem even when something else is.
    expect(problems({ type: "nope", lookbackDays: 2 }).map((p) => p.field)).toEqual(["type"]);
  });

  it("says exactly what each number must be", () => {
    const message = (body: Record<string, unknown>, field: string) =>
      problems({ ...valid, ...body }).find((p) => p.field === field)?.message;
    expect(message({ maxEvents: 0 }, "maxEvents")).toBe("maxEvents must be an integer from 1 to 100000");
    expect(message({ maxEvents: 2.5 }, "maxEvents")).toBe("maxEvents must be an integer from 1 to 100000");
    expect(message({ maxEvents: "x" }, "maxEvents")).toBe("maxEvents must be an integer from 1 to 100000");
    expect(message({ maxErrorRate: -0.1 }, "maxErrorRate")).toBe(
      "maxErrorRate must be a number from 0 to 1 (0.05 means 5%; 1 never pauses)",
    );
    expect(message({ maxErrorRate: "0.1" }, "maxErrorRate")).toBe(
      "maxErrorRate must be a number from 0 to 1 (0.05 means 5%; 1 never pauses)",
    );
    const lookback = (v: unknown) =>
      problems({ type: "webhook_replay", lookbackDays: v }).find((p) => p.field === "lookbackDays")?.message;
    expect(lookback(1.5)).toBe("lookbackDays must be a whole number of days of at least 1");
    expect(lookback("2")).toBe("lookbackDays must be a whole number of days of at least 1");
    expect(lookback(0)).toBe("lookbackDays must be a whole number of days of at least 1");
    expect(lookback(367)).toBe("lookbackDays may be at most 366");
    expect(problems({ ...valid, endDate: "2026-01-01" })).toEqual([]); // 366 days: the limit itself
    expect(problems({ ...valid, startDate: "2024-12-31", endDate: "2026-01-01" })).toEqual([
      {
        field: "endDate",
        message: "the range covers 367 days; one run may cover at most 366; split it into several runs",
      },
    ]);
    expect(problems({ type: 5, startDate: "2025-01-01", endDate: "2025-01-02" })).toEqual([
      { field: "type", message: 'type must be one of "webhook_replay", "reversal_backfill"' },
    ]);
    expect(problems("text")).toEqual([{ field: "body", message: "the body must be a JSON object" }]);
    expect(problems({ ...valid, extra: 1, more: 2 }).map((p) => p.message)).toEqual([
      "extra is not a known field (known fields: type, startDate, endDate, lookbackDays, dryRun, maxEvents, maxErrorRate, maxEventsPerSecond, userIds)",
      "more is not a known field (known fields: type, startDate, endDate, lookbackDays, dryRun, maxEvents, maxErrorRate, maxEventsPerSecond, userIds)",
    ]);
  });
});
