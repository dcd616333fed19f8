// The one place emulator tests get their settings and clients from. The stack (scripts/stack.ts exec) sets
// FIRESTORE_EMULATOR_HOST, CLOUD_TASKS_EMULATOR_HOST, BACKFILL_API_URL and BACKFILL_EMULATOR_LOG.
import { readFileSync } from "node:fs";
import { getApps, initializeApp } from "firebase-admin/app";
import { FieldValue, getFirestore, type Firestore } from "firebase-admin/firestore";
import { createTokenVerifier, GOOGLE_ISSUERS } from "../../functions/src/auth/oidc";
import { loadConfig, type Config } from "../../functions/src/config";
import type { Deps, FaultInjector } from "../../functions/src/deps";
import { BackfillLog } from "../../functions/src/log";
import type { RunDoc } from "../../functions/src/store/runs";
import type { ChunkQueue, ChunkTaskPayload } from "../../functions/src/platform/tasks";
import { BackfillClient, type StartRunBody } from "../../functions/src/http/client";
import { checkAnswer } from "../../functions/src/http/validate";
import { mintLocalToken, type LocalTokenOptions } from "../../scripts/localToken";

export const PROJECT_ID = "demo-backfill";

/** The caller in-process tests act as (start, control). */
export const TEST_CALLER = { email: "tests@backfill.local", sub: "tests" } as const;

export function requireStack(): { api: string; logFile: string } {
  const api = process.env.BACKFILL_API_URL;
  const logFile = process.env.BACKFILL_EMULATOR_LOG;
  if (!process.env.FIRESTORE_EMULATOR_HOST || !api || !logFile) {
    throw new Error(
      'Emulator tests run inside the local stack: npm test, or npm run emulators:exec -- "vitest run --project emulator"',
    );
  }
  return { api, logFile };
}

export function db(): Firestore {
  requireStack();
  if (getApps().length === 0) initializeApp({ projectId: PROJECT_ID });
  return getFirestore();
}

export const token = (options?: LocalTokenOptions) => mintLocalToken(options);

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

/** The API client the CLI and the console use, checking every answer against the server's schemas. */
export function client(options: { token?: string | null } = {}): BackfillClient {
  const { api: base } = requireStack();
  return new BackfillClient({
    baseUrl: base,
    authorization: async () => {
      const bearer = options.token === undefined ? await token() : options.token;
      return bearer ? `Bearer ${bearer}` : null;
    },
    validate: checkAnswer,
  });
}

/** Calls the API through Hosting, as operators do, and returns the answer as it came (any status). */
export async function api<T = any>(
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; token?: string | null; headers?: Record<string, string> } = {},
): Promise<ApiResponse<T>> {
  const res = await client({ token: options.token }).raw(method, path, {
    body: options.body,
    rawBody: options.raw,
    headers: options.headers,
  });
  return { status: res.status, body: res.body as T, text: res.text, headers: res.headers };
}

export async function postRun(body: Record<string, unknown>): Promise<string> {
  return (await client().start(body as StartRunBody)).migrationId;
}

const FINISHED = ["completed", "failed", "cancelled"];

/** Polls a run until it reaches one of `statuses` (by default, any finished status). */
export async function waitForRun(id: string, statuses: string[] = FINISHED, timeoutMs = 90_000): Promise<RunDoc> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = (await db().collection("dataMigrations").doc(id).get()).data() as RunDoc | undefined;
    if (run && statuses.includes(run.status)) return run;
    if (Date.now() > deadline)
      throw new Error(`run ${id} is ${run?.status ?? "missing"} after ${timeoutMs} ms; wanted ${statuses.join("|")}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A fresh UTC year for one test, so its date ranges select only its own events. */
export async function uniqueYear(): Promise<number> {
  const ref = db().collection("testMeta").doc("years");
  const n = await db().runTransaction(async (tx) => {
    const next = ((await tx.get(ref)).get("next") as number | undefined) ?? 0;
    tx.set(ref, { next: next + 1 });
    return next;
  });
  return 2200 + n;
}

/**
 * Empties the Firestore emulator (every collection of the project). The load test starts from an empty
 * database: the emulator answers queries by scanning whole collections, and what earlier files left behind
 * would otherwise decide how fast fifty cold requests can be served.
 */
export async function clearFirestore(): Promise<void> {
  requireStack();
  const res = await fetch(
    `http://${process.env.FIRESTORE_EMULATOR_HOST}/emulator/v1/projects/${PROJECT_ID}/databases/(default)/documents`,
    { method: "DELETE" },
  );
  if (!res.ok) throw new Error(`clearing the Firestore emulator failed: ${res.status} ${await res.text()}`);
}

export async function setKillSwitch(enabled: boolean | null): Promise<void> {
  const ref = db().collection("featureFlags").doc("backfill");
  if (enabled === null) await ref.delete();
  else await ref.set({ enabled });
}

export async function countDocs(collection: string): Promise<number> {
  return (await db().collection(collection).count().get()).data().count;
}

/** Structured log lines the functions wrote, as the emulator relayed them, for one run. */
export function readLogs(
  filter: (line: Record<string, unknown>) => boolean = () => true,
): Array<Record<string, unknown>> {
  const { logFile } = requireStack();
  const lines: Array<Record<string, unknown>> = [];
  for (const raw of readFileSync(logFile, "utf8").split("\n")) {
    const start = raw.indexOf("{");
    if (!raw.startsWith(">") || start < 0) continue;
    try {
      const entry = JSON.parse(raw.slice(start)) as Record<string, unknown>;
      if (entry.component === "backfill" && filter(entry)) lines.push(entry);
    } catch {
      // a non-JSON line
    }
  }
  return lines;
}

/** Log lines of one run; waits briefly for the emulator to relay them. */
export async function runLogs(
  migrationId: string,
  until: (lines: Array<Record<string, unknown>>) => boolean,
): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const lines = readLogs((l) => l.migration_id === migrationId);
    if (until(lines) || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A queue that only records what would be enqueued, so a test delivers chunk tasks itself. */
export class RecordingQueue implements ChunkQueue {
  readonly names = new Set<string>();
  private pending: Array<{ payload: ChunkTaskPayload; taskId: string }> = [];

  enqueue(payload: ChunkTaskPayload, taskId: string): Promise<"enqueued" | "exists"> {
    if (this.names.has(taskId)) return Promise.resolve("exists");
    this.names.add(taskId);
    this.pending.push({ payload, taskId });
    return Promise.resolve("enqueued");
  }

  /** Like Cloud Tasks: a deleted task is not delivered; deleting an unknown one reports "missing". */
  delete(taskId: string): Promise<"deleted" | "missing" | "skipped"> {
    const before = this.pending.length;
    this.pending = this.pending.filter((t) => t.taskId !== taskId);
    return Promise.resolve(this.pending.length < before ? "deleted" : "missing");
  }

  /** Takes every task enqueued since the last call. */
  drain(): Array<{ payload: ChunkTaskPayload; taskId: string }> {
    const tasks = this.pending;
    this.pending = [];
    return tasks;
  }
}

/** Collects log lines written by in-process handlers. */
export class MemoryLog {
  readonly lines: Array<Record<string, unknown> & { severity: string }> = [];
  readonly log = new BackfillLog((severity, payload) => this.lines.push({ severity, ...payload }));
}

/** Dependencies for calling handlers in this process, against the emulator's Firestore. */
export function testDeps(options: { config?: Partial<Config>; faults?: FaultInjector; queue?: ChunkQueue } = {}) {
  const base = loadConfig({
    GCLOUD_PROJECT: PROJECT_ID,
    FUNCTIONS_EMULATOR: "true",
    OIDC_AUDIENCES: "http://127.0.0.1:5000",
  });
  const memory = new MemoryLog();
  const queue = options.queue ?? new RecordingQueue();
  const deps: Deps = {
    db: db(),
    // Suites leave runs paused or pending on purpose; the admission test sets its own limit.
    config: { ...base, maxActiveRuns: 1000, ...options.config },
    queue,
    log: memory.log,
    verifier: createTokenVerifier({
      audiences: ["unused"],
      google: { issuers: GOOGLE_ISSUERS, certs: () => Promise.resolve({}) },
    }),
    now: () => new Date(),
    faults: options.faults,
  };
  return { deps, memory, queue };
}

export const serverNow = () => FieldValue.serverTimestamp();

/** Replaces a test's clock with one the test moves forward: leases expire, tasks stall, on demand. */
export function manualClock(...all: Deps[]): { advance(ms: number): void; offset(): number } {
  let offset = 0;
  for (const deps of all) deps.now = () => new Date(Date.now() + offset);
  return {
    advance(ms: number) {
      offset += ms;
    },
    offset: () => offset,
  };
}
