// Who may do what, through Hosting: every endpoint × every kind of caller, the status each gets, and that a
// refused call writes nothing. The local stack's lists (functions/.env.local): viewer@backfill.local may
// only read, scheduler@backfill.local may only start runs, oncall@backfill.local and the default local
// operator may do everything; intern@backfill.local is on no list.
import { beforeAll, describe, expect, it } from "vitest";
import { api, countDocs, db, setKillSwitch, postRun, token, waitForRun } from "../../support/emulator";

type Who = "nobody" | "viewer" | "scheduler" | "operator" | "unlisted";
const EMAIL: Record<Exclude<Who, "nobody">, string> = {
  viewer: "viewer@backfill.local",
  scheduler: "scheduler@backfill.local",
  operator: "oncall@backfill.local",
  unlisted: "intern@backfill.local",
};

let runId = "";
const start = { type: "webhook_replay", startDate: "2390-01-01", endDate: "2390-01-01", dryRun: true };

interface Endpoint {
  name: string;
  method: "GET" | "POST";
  path: () => string;
  body?: unknown;
  /** Whether a call writes (so a refused one must write nothing). */
  writes: boolean;
  /** What each kind of caller gets. */
  expect: Record<Who, number>;
}

// A completed run: its control calls get past authorization and are then refused for the run's state
// (409), which shows the role was allowed without changing the run.
const ENDPOINTS: Endpoint[] = [
  {
    name: "list runs",
    method: "GET",
    path: () => "/api/admin/dataMigrations?limit=1",
    writes: false,
    expect: { nobody: 401, viewer: 200, scheduler: 403, operator: 200, unlisted: 403 },
  },
  {
    name: "a run",
    method: "GET",
    path: () => `/api/admin/dataMigrations/${runId}`,
    writes: false,
    expect: { nobody: 401, viewer: 200, scheduler: 403, operator: 200, unlisted: 403 },
  },
  {
    name: "a report",
    method: "GET",
    path: () => `/api/admin/dataMigrations/${runId}/report`,
    writes: false,
    expect: { nobody: 401, viewer: 200, scheduler: 403, operator: 200, unlisted: 403 },
  },
  {
    name: "who am I",
    method: "GET",
    path: () => "/api/admin/me",
    writes: false,
    expect: { nobody: 401, viewer: 200, scheduler: 403, operator: 200, unlisted: 403 },
  },
  {
    name: "the kill switch",
    method: "GET",
    path: () => "/api/admin/killSwitch",
    writes: false,
    expect: { nobody: 401, viewer: 200, scheduler: 403, operator: 200, unlisted: 403 },
  },
  ...(["pause", "resume", "cancel", "retry"] as const).map((action): Endpoint => ({
    name: action,
    method: "POST",
    path: () => `/api/admin/dataMigrations/${runId}/${action}`,
    writes: true,
    expect: { nobody: 401, viewer: 403, scheduler: 403, operator: 409, unlisted: 403 },
  })),
  {
    name: "flip the kill switch",
    method: "POST",
    path: () => "/api/admin/killSwitch",
    body: { enabled: true },
    writes: true,
    expect: { nobody: 401, viewer: 403, scheduler: 403, operator: 200, unlisted: 403 },
  },
  // A scheduler may start only the recurring replay it is configured for (issue 18 item 10); this is an
  // operator's dry run over given days.
  {
    name: "start a run",
    method: "POST",
    path: () => "/api/jobs/backfill",
    body: start,
    writes: true,
    expect: { nobody: 401, viewer: 403, scheduler: 403, operator: 202, unlisted: 403 },
  },
];

/** Everything a call could write. */
async function footprint(): Promise<string> {
  const [runs, keys, actions, run, flag] = await Promise.all([
    countDocs("dataMigrations"),
    countDocs("idempotencyKeys"),
    db().collection("dataMigrations").doc(runId).collection("actions").count().get(),
    db().collection("dataMigrations").doc(runId).get(),
    db().collection("featureFlags").doc("backfill").get(),
  ]);
  return JSON.stringify([
    runs,
    keys,
    actions.data().count,
    run.updateTime?.toMillis(),
    flag.updateTime?.toMillis() ?? null,
  ]);
}

beforeAll(async () => {
  await setKillSwitch(null);
  runId = await postRun(start);
  await waitForRun(runId);
});

describe("the role matrix", () => {
  const cases = ENDPOINTS.flatMap((e) =>
    (["nobody", "viewer", "scheduler", "operator", "unlisted"] as const).map((who) => ({
      ...e,
      who,
      status: e.expect[who],
    })),
  );

  it.each(cases)("$who → $name: $status", async ({ who, method, path, body, writes, status }) => {
    const bearer = who === "nobody" ? null : await token({ email: EMAIL[who] });
    const before = await footprint();
    const res = await api(method, path(), { token: bearer, ...(body === undefined ? {} : { body }) });
    expect(res.status, res.text.slice(0, 300)).toBe(status);
    if (status === 401 || status === 403) {
      expect(res.body.error.code).toBe(status === 401 ? "unauthenticated" : "forbidden");
      // The sentence names the list that would grant the call.
      if (status === 403)
        expect(res.body.error.message).toMatch(/add it to (OPERATOR_EMAILS|VIEWER_EMAILS)|Operators start other runs/);
      if (writes) expect(await footprint(), "a refused call writes nothing").toBe(before);
    }
  });
});

describe("what a scheduler may start (issue 18 item 10)", () => {
  // The local stack's recurring replay (functions/.env.local): REPLAY_LOOKBACK_DAYS=2, REPLAY_DRY_RUN=false,
  // REPLAY_MAX_EVENTS=10000.
  const replay = { type: "webhook_replay", lookbackDays: 2, dryRun: false, maxEvents: 10000 };

  it("only the recurring replay: any other type, window, mode, cap, range, canary, pace or plan is 403 and writes nothing", async () => {
    const bearer = await token({ email: EMAIL.scheduler });
    for (const body of [
      { ...replay, type: "reversal_backfill" },
      { ...replay, lookbackDays: 30 },
      { ...replay, dryRun: true },
      { type: "webhook_replay", lookbackDays: 2, maxEvents: 10000 },
      { ...replay, maxEvents: 10001 },
      { type: "webhook_replay", startDate: "2392-01-01", endDate: "2392-01-02", dryRun: false },
      { ...replay, userIds: ["u1"] },
      { ...replay, maxEventsPerSecond: 5 },
      { ...replay, maxErrorRate: 1 },
      { planOf: runId },
    ]) {
      const before = await footprint();
      const res = await api("POST", "/api/jobs/backfill", { body, token: bearer });
      expect(res.status, JSON.stringify(body)).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
      expect(res.body.error.message).toContain(
        'may start only the recurring replay {"type": "webhook_replay", "lookbackDays": 2, "dryRun": false, "maxEvents": at most 10000}',
      );
      expect(await footprint(), `${JSON.stringify(body)} writes nothing`).toBe(before);
    }
  });

  it("the recurring replay itself, with its cap or a lower one, is started and recorded as the scheduler's", async () => {
    const bearer = await token({ email: EMAIL.scheduler });
    const res = await api("POST", "/api/jobs/backfill", { body: { ...replay, maxEvents: 500 }, token: bearer });
    expect(res.status, res.text).toBe(202);
    const id = res.body.migrationId as string;
    await waitForRun(id);
    expect((await api("GET", `/api/admin/dataMigrations/${id}`)).body.migration).toMatchObject({
      requestedBy: EMAIL.scheduler,
      lookbackDays: 2,
      dryRun: false,
      maxEvents: 500,
    });
  });
});

describe("what the roles record", () => {
  it("a run and a control action record the caller's email and subject", async () => {
    const bearer = await token({ email: EMAIL.operator, claims: { sub: "oncall-subject-1" } });
    const res = await api("POST", "/api/jobs/backfill", {
      body: { ...start, startDate: "2391-01-01", endDate: "2391-01-01" },
      token: bearer,
    });
    expect(res.status).toBe(202);
    const id = res.body.migrationId as string;
    await waitForRun(id);
    expect((await api("GET", `/api/admin/dataMigrations/${id}`)).body.migration).toMatchObject({
      requestedBy: EMAIL.operator,
      requestedBySub: "oncall-subject-1",
    });
    await api("POST", `/api/admin/dataMigrations/${id}/cancel`, { token: bearer });
    const actions = await db().collection("dataMigrations").doc(id).collection("actions").get();
    expect(actions.docs.map((d) => d.data())).toEqual([
      expect.objectContaining({
        action: "cancel",
        outcome: "refused",
        email: EMAIL.operator,
        sub: "oncall-subject-1",
        statusBefore: "completed",
      }),
    ]);
  });

  it("an operator flips the kill switch through the API, and the switch records who", async () => {
    const bearer = await token({ email: EMAIL.operator, claims: { sub: "oncall-subject-2" } });
    const off = await api("POST", "/api/admin/killSwitch", { body: { enabled: false }, token: bearer });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ enabled: false, disabledBy: "featureFlags/backfill" });
    expect((await db().collection("featureFlags").doc("backfill").get()).data()).toMatchObject({
      enabled: false,
      updatedBy: EMAIL.operator,
      updatedBySub: "oncall-subject-2",
    });
    expect((await api("POST", "/api/jobs/backfill", { body: start })).status).toBe(503);
    const on = await api("POST", "/api/admin/killSwitch", { body: { enabled: true }, token: bearer });
    expect(on.body).toMatchObject({ enabled: true, disabledBy: null });
    const bad = await api("POST", "/api/admin/killSwitch", { body: { enabled: "off" }, token: bearer });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.fields).toEqual([{ field: "enabled", message: "enabled must be true or false" }]);
    await setKillSwitch(null);
  });
});
