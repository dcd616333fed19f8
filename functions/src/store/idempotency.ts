// Idempotency keys (`idempotencyKeys/{sha256(caller email, key)}`): same caller, same key and same body
// give the same run; same key with another body is refused. This module is the collection's one writer:
// the key's record is created in the same batch as the run it answers with (jobs/create.ts), so two
// requests with one key can never both start a run.
import { createHash } from "node:crypto";
import { FieldValue, Timestamp, type DocumentReference, type WriteBatch } from "firebase-admin/firestore";
import type { StartRequest } from "../core/request";
import type { Deps } from "../deps";
import { AppError, invalidRequest } from "../errors";
import type { StartedRun } from "../http/schemas";
import { COLLECTIONS } from "../platform/collections";
import { typed } from "../platform/firestore";

interface IdempotencyDoc {
  key: string;
  bodyHash: string;
  migrationId: string;
  response: StartedRun;
  requestedBy: string;
  createdAt: Timestamp;
  /** Firestore TTL removes the record after this (see firestore.indexes.json). */
  expiresAt: Timestamp;
}

const IDEMPOTENCY_TTL_DAYS = 30;
const KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;

/** One request's key: what it asked (its body's hash) and where its record lives. */
export interface IdempotencyKey {
  key: string;
  bodyHash: string;
  ref: DocumentReference<IdempotencyDoc>;
}

/** Refuses a malformed key (400, before anything is read). */
export function checkKeyShape(key: string | null): void {
  if (key !== null && !KEY_PATTERN.test(key)) {
    throw invalidRequest([
      {
        field: "Idempotency-Key",
        message: "Idempotency-Key must be 1 to 200 printable ASCII characters without spaces",
      },
    ]);
  }
}

/** The key a request sent, scoped to its caller, for the body it sent: a new run's parameters or a plan's id. */
export function idempotencyKey(
  deps: Deps,
  callerEmail: string,
  key: string,
  body: { request: StartRequest } | { planOf: string },
): IdempotencyKey {
  const bodyHash = "request" in body ? hashRequest(body.request) : sha256(JSON.stringify({ planOf: body.planOf }));
  const ref = deps.db
    .collection(COLLECTIONS.idempotency)
    .doc(sha256(`${callerEmail}\n${key}`))
    .withConverter(typed<IdempotencyDoc>());
  return { key, bodyHash, ref };
}

/** The run an earlier request with this key started, if any and if it asked for the same; else 409. */
export async function earlierAnswer(k: IdempotencyKey): Promise<StartedRun | null> {
  const record = (await k.ref.get()).data();
  if (!record) return null;
  if (record.bodyHash !== k.bodyHash) {
    throw new AppError(
      409,
      "idempotency_key_reused",
      `Idempotency-Key ${k.key} was already used for a different request (run ${record.migrationId}); use a new key for a new request.`,
      { migrationId: record.migrationId },
    );
  }
  return record.response;
}

/** Adds the key's record to the batch that creates its run (the batch fails if another request created it first). */
export function recordKey(
  batch: WriteBatch,
  k: IdempotencyKey,
  response: StartedRun,
  requestedBy: string,
  now: Date,
): void {
  batch.create(k.ref, {
    key: k.key,
    bodyHash: k.bodyHash,
    migrationId: response.migrationId,
    response,
    requestedBy,
    createdAt: FieldValue.serverTimestamp(),
    expiresAt: Timestamp.fromMillis(now.getTime() + IDEMPOTENCY_TTL_DAYS * 86_400_000),
  });
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** What makes two requests "the same body": the fields as given (a lookback window, not its dates). */
function hashRequest(r: StartRequest): string {
  const given = {
    type: r.type,
    startDate: r.lookbackDays === null ? r.startDate : null,
    endDate: r.lookbackDays === null ? r.endDate : null,
    lookbackDays: r.lookbackDays,
    dryRun: r.dryRun,
    maxEvents: r.maxEvents,
    maxErrorRate: r.maxErrorRate,
    maxEventsPerSecond: r.maxEventsPerSecond,
    userIds: r.userIds,
  };
  return sha256(JSON.stringify(given));
}
