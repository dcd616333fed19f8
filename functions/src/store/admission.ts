// Admission control at the edge: every start (and every retry, which makes an ended run active again) is
// decided against `backfillAdmission/active`, the list of runs that may still be active, and written
// together with an update of that list, conditional on the version read. Two starts that would race the
// same repair can therefore never both get in: the second one's write fails, and it decides again on the
// list that now holds the first. Conditional writes rather than a transaction: fifty starts at once would
// otherwise queue behind one document's lock (the emulator times such transactions out).
import { FieldValue, type Timestamp, type WriteBatch } from "firebase-admin/firestore";
import { admit, type ActiveRun } from "../core/admission";
import type { Deps } from "../deps";
import { AppError } from "../errors";
import { COLLECTIONS } from "../platform/collections";
import { Conflict, isPreconditionFailure, readDecideWrite } from "../platform/firestore";
import { runStore } from "./runs";

/** What a 429 too_many_runs asks the caller to wait, in seconds. */
export const RETRY_AFTER_SECONDS = 60;
const ATTEMPTS = 200;
const ACTIVE = ["pending", "running", "paused"];
/** How long an admitted retry counts as active before it reopens its run (a retry that crashed in between stops counting then). */
export const RETRY_ADMISSION_HOLD_MS = 10 * 60_000;

/** The refusal a caller reads when admission says no. */
function refused(decision: Exclude<ReturnType<typeof admit>, { ok: true }>): AppError {
  return decision.status === 409
    ? new AppError(409, "run_overlaps", decision.message, { activeRunId: decision.activeRunId })
    : new AppError(429, "too_many_runs", decision.message, undefined, { "Retry-After": String(RETRY_AFTER_SECONDS) });
}

/**
 * Admits `candidate` and commits `write`'s documents together with the updated list. `write` adds the
 * run's own documents to the batch. When the batch fails because a document it creates exists already,
 * `onExists` says what that means ("retry" if it was only the list that moved, or a final answer).
 */
export async function admitAndWrite<T>(
  deps: Deps,
  candidate: ActiveRun,
  write: (batch: WriteBatch) => void,
  onExists: () => Promise<T | "retry">,
): Promise<T | "written"> {
  const db = deps.db;
  const ref = db.collection(COLLECTIONS.admission).doc("active");
  const runs = runStore(db);
  const busy = () => {
    throw new AppError(503, "busy", "Too many runs were started at the same moment; try again.");
  };
  // Someone else admitted meanwhile: decide again on the list as it is now, a little later each time.
  const pause = (attempt: number) => Math.floor(Math.random() * 20 * Math.min(attempt + 1, 10));
  return readDecideWrite<T | "written">(
    "backfillAdmission/active",
    async () => {
      const snap = await ref.get();
      const listed = ((snap.get("runs") as ActiveRun[] | undefined) ?? []).filter((r) => r.id !== candidate.id);
      const states = listed.length > 0 ? await db.getAll(...listed.map((r) => runs.doc(r.id))) : [];
      const now = deps.now().getTime();
      // A run is active while pending, running or paused, and while a retry admitted for it has not reopened it yet.
      const active = listed.filter((_, i) => {
        const state = states[i];
        if (ACTIVE.includes(state?.get("status") as string)) return true;
        const admittedAt = state?.get("retryAdmittedAt") as unknown;
        return typeof admittedAt === "number" && now - admittedAt < RETRY_ADMISSION_HOLD_MS;
      });
      const decision = admit(candidate, active, deps.config.maxActiveRuns);
      if (!decision.ok) throw refused(decision);
      const batch = db.batch();
      write(batch);
      const list = { runs: [...active, candidate], updatedAt: FieldValue.serverTimestamp() };
      if (snap.exists) batch.update(ref, list, { lastUpdateTime: snap.updateTime as Timestamp });
      else batch.create(ref, list);
      try {
        await batch.commit();
        return "written";
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === 6 /* ALREADY_EXISTS */) {
          const answer = await onExists();
          if (answer !== "retry") return answer;
        } else if (!isPreconditionFailure(error)) {
          throw error;
        }
        return new Conflict(ATTEMPTS, busy);
      }
    },
    pause,
  );
}
