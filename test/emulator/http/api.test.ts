// What callers see at the edge: authentication, bad input and unknown routes, through Hosting. Every
// rejection is a JSON error that names the problem, and writes nothing.
import { beforeAll, describe, expect, it } from "vitest";
import { api, countDocs, token } from "../../support/emulator";

const valid = { type: "webhook_replay", startDate: "1998-01-01", endDate: "1998-01-02", dryRun: true };

let runsBefore: number;
beforeAll(async () => {
  runsBefore = await countDocs("dataMigrations");
});

describe("authentication and allowlists", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases: Array<[string, () => Promise<string | null>, number, string, RegExp]> = [
    ["no token", () => Promise.resolve(null), 401, "unauthenticated", /Missing credentials/],
    ["a malformed token", () => Promise.resolve("abc.def"), 401, "unauthenticated", /not a JWT/],
    [
      "a token for another audience",
      () => token({ claims: { aud: "https://other.example" } }),
      401,
      "unauthenticated",
      /audience/,
    ],
    [
      "an expired token",
      () => token({ claims: { iat: now() - 7200, exp: now() - 3600 } }),
      401,
      "unauthenticated",
      /expired/,
    ],
    [
      "an unverified email",
      () => token({ claims: { email_verified: false } }),
      403,
      "email_not_verified",
      /not verified/,
    ],
    [
      "an email nobody allowed",
      () => token({ email: "intern@backfill.local" }),
      403,
      "forbidden",
      /intern@backfill.local is not allowed to start runs; add it to OPERATOR_EMAILS/,
    ],
    [
      "a viewer on the jobs endpoint",
      () => token({ email: "viewer@backfill.local" }),
      403,
      "forbidden",
      /viewer@backfill.local is not allowed to start runs/,
    ],
  ];

  it.each(cases)("rejects %s on POST /api/jobs/backfill", async (_name, mint, status, code, message) => {
    const res = await api("POST", "/api/jobs/backfill", { body: valid, token: await mint() });
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.message).toMatch(message);
    if (status === 401) expect(res.headers.get("www-authenticate")).toBe("Bearer");
  });

  it("accepts the default local operator and a configured email", async () => {
    expect((await api("POST", "/api/jobs/backfill", { body: valid })).status).toBe(202);
    expect(
      (await api("POST", "/api/jobs/backfill", { body: valid, token: await token({ email: "oncall@backfill.local" }) }))
        .status,
    ).toBe(202);
    runsBefore += 2;
  });

  it("keeps separate allowlists for the admin endpoints", async () => {
    expect(
      (await api("GET", "/api/admin/dataMigrations", { token: await token({ email: "viewer@backfill.local" }) }))
        .status,
    ).toBe(200);
    const res = await api("GET", "/api/admin/dataMigrations", {
      token: await token({ email: "intern@backfill.local" }),
    });
    expect(res.status).toBe(403);
    expect(res.body.error.message).toMatch(/add it to VIEWER_EMAILS \(read only\) or OPERATOR_EMAILS/);
  });

  it("wrote nothing for any rejected call", async () => {
    expect(await countDocs("dataMigrations")).toBe(runsBefore);
  });
});

describe("bad input", () => {
  const bodies: Array<[string, string, unknown]> = [
    ["an empty object", "type", {}],
    ["an array", "body", [valid]],
    ["a number where a date belongs", "startDate", { ...valid, startDate: 20250101 }],
    ["an unknown type", "type", { ...valid, type: "drop_tables" }],
    ["February 30th", "startDate", { ...valid, startDate: "2025-02-30" }],
    ["a US-style date", "startDate", { ...valid, startDate: "01/02/2025" }],
    ["an end before the start", "endDate", { ...valid, startDate: "1998-02-01", endDate: "1998-01-01" }],
    ["a range of more than a year", "endDate", { ...valid, startDate: "1990-01-01", endDate: "1998-01-01" }],
    ["dryRun as a string", "dryRun", { ...valid, dryRun: "false" }],
    ["maxEvents of zero", "maxEvents", { ...valid, maxEvents: 0 }],
    ["maxEvents above 100000", "maxEvents", { ...valid, maxEvents: 100_001 }],
    ["maxEvents as a float", "maxEvents", { ...valid, maxEvents: 2.5 }],
    ["an unknown field", "force", { ...valid, force: true }],
  ];

  it.each(bodies)("answers 400 invalid_request for %s, naming %s", async (_name, field, body) => {
    const res = await api("POST", "/api/jobs/backfill", { body });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_request");
    expect(res.body.error.details.fields.map((f: { field: string }) => f.field)).toContain(field);
  });

  it("answers 400 for a body that is not sent as JSON", async () => {
    const res = await api("POST", "/api/jobs/backfill", {
      raw: JSON.stringify(valid),
      headers: { "content-type": "text/plain" },
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "invalid_content_type", details: { contentType: "text/plain" } });
  });

  it("answers 413 for a body over 64 KiB", async () => {
    const res = await api("POST", "/api/jobs/backfill", { body: { ...valid, padding: "x".repeat(70_000) } });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe("payload_too_large");
  });

  it.each([
    ["malformed JSON", '{"type": "webhook_replay",'],
    ["a bare JSON string", '"webhook_replay"'],
  ])("answers 400 for %s (the Functions runtime's JSON parser refuses it before our code runs)", async (_name, raw) => {
    const res = await api("POST", "/api/jobs/backfill", { raw, headers: { "content-type": "application/json" } });
    expect(res.status).toBe(400);
  });

  it("answers 404 and 405 as JSON", async () => {
    const missing = await api("GET", "/api/nothing-here");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
    const run = await api("GET", "/api/admin/dataMigrations/webhook_replay_1");
    expect(run.status).toBe(404);
    expect(run.body.error.message).toMatch(/No run webhook_replay_1/);
    const wrongMethod = await api("GET", "/api/jobs/backfill");
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    expect(wrongMethod.body.error.code).toBe("method_not_allowed");
  });

  it("validates the list limit", async () => {
    const res = await api("GET", "/api/admin/dataMigrations?limit=5000");
    expect(res.status).toBe(400);
    expect(res.body.error.details.fields[0].field).toBe("limit");
    const ok = await api("GET", "/api/admin/dataMigrations?limit=2");
    expect(ok.status).toBe(200);
    expect(ok.body.migrations).toHaveLength(2);
    const [newer, older] = ok.body.migrations as Array<{ createdAt: string }>;
    expect(newer!.createdAt >= older!.createdAt).toBe(true);
  });

  it("wrote nothing for any bad request", async () => {
    expect(await countDocs("dataMigrations")).toBe(runsBefore);
  });
});
