import { describe, expect, it } from "vitest";
import { dayCount, daysInRange, trailingWindow } from "../../../functions/src/core/dates";

describe("UTC day arithmetic", () => {
  it("lists every day of a range, both ends included, across month and leap-year boundaries", () => {
    expect(daysInRange("2024-02-27", "2024-03-01")).toEqual(["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01"]);
    expect(daysInRange("2025-01-01", "2025-01-01")).toEqual(["2025-01-01"]);
    expect(dayCount("2024-01-01", "2024-12-31")).toBe(366);
  });

  it("computes a trailing window that ends today", () => {
    expect(trailingWindow(new Date("2025-03-01T03:00:00Z"), 2)).toEqual({
      startDate: "2025-02-28",
      endDate: "2025-03-01",
    });
    expect(trailingWindow(new Date("2025-03-01T23:59:59Z"), 1)).toEqual({
      startDate: "2025-03-01",
      endDate: "2025-03-01",
    });
  });
});
