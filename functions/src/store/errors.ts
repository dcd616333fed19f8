// Error records (`dataMigrations/{id}/errors/{eventId}`): an event a run could not apply, open until a
// retry's errors step settles it. Written only with the page commit whose counters they explain
// (chunks/page.ts), so a retried page can never leave the two apart; read by the errors step, control,
// the run view and the report, all here.
import { FieldValue, type Firestore, type Timestamp, type WriteBatch } from "firebase-admin/firestore";
import type { Step } from "../core/chunk";
import type { MoneyOutcome } from "../core/outcomes";
import type { Phase } from "../core/types";
import { refs } from "../platform/collections";
import { typed } from "../platform/firestore";

/** `dataMigrations/{id}/errors/{eventId}`: an event that failed; `resolved` once a retry got past it. */
export interface EventErrorDoc {
  eventId: string;
  code: string;
  message: string;
  chunkId: string;
  phase: Phase;
  status: "open" | "resolved";
  /** How a retry settled it. */
  resolvedAs: "processed" | "skipped" | null;
  attempts: number;
  at: Timestamp;
}

export function errorStore(db: Firestore) {
  const errors = (runId: string) => refs(db).errors(runId).withConverter(typed<EventErrorDoc>());
  const open = (runId: string) => errors(runId).where("status", "==", "open");
  return {
    /**
     * Adds to a page's commit what its outcomes change in the error records: each error opened (or met
     * again: one more attempt), and in an errors step each event that got past its error resolved.
     * Returns the number of records written.
     */
    recordOutcomes(
      batch: WriteBatch,
      runId: string,
      chunkId: string,
      step: Step,
      outcomes: readonly MoneyOutcome[],
    ): number {
      const now = FieldValue.serverTimestamp();
      let written = 0;
      for (const o of outcomes) {
        const ref = errors(runId).doc(o.eventId);
        if (o.result === "error") {
          const record = {
            eventId: o.eventId,
            code: o.code,
            message: o.message,
            chunkId,
            phase: step.phase,
            status: "open" as const,
            resolvedAs: null,
            attempts: FieldValue.increment(1),
            at: now,
          };
          batch.set(ref, record, { merge: true });
          written++;
        } else if (step.step === "errors") {
          batch.update(ref, { status: "resolved", resolvedAs: o.result, at: now });
          written++;
        }
      }
      return written;
    },

    /** How many of the run's errors are open (an aggregation). */
    async openCount(runId: string): Promise<number> {
      return (await open(runId).count().get()).data().count;
    },

    /** The run's first `limit` open errors by event id. */
    async openSample(runId: string, limit: number): Promise<EventErrorDoc[]> {
      return (await open(runId).orderBy("eventId").limit(limit).get()).docs.map((d) => d.data());
    },

    /** For each chunk with open errors, the phases they are in (what a retry's errors steps cover). */
    async openPhases(runId: string): Promise<Map<string, Set<Phase>>> {
      const docs = (await refs(db).errors(runId).where("status", "==", "open").select("chunkId", "phase").get()).docs;
      const phases = new Map<string, Set<Phase>>();
      for (const doc of docs) {
        const chunkId = doc.get("chunkId") as string;
        phases.set(chunkId, (phases.get(chunkId) ?? new Set<Phase>()).add(doc.get("phase") as Phase));
      }
      return phases;
    },

    /** The event ids of a chunk's open errors in one phase, after `after`, by event id: an errors step's page. */
    async openOfChunk(
      runId: string,
      chunkId: string,
      phase: Phase,
      after: string | null,
      limit: number,
    ): Promise<string[]> {
      // In the order of its composite index (firestore.indexes.json).
      let query = errors(runId)
        .where("chunkId", "==", chunkId)
        .where("phase", "==", phase)
        .where("status", "==", "open")
        .orderBy("eventId");
      if (after) query = query.startAfter(after);
      return (await query.limit(limit).get()).docs.map((d) => d.data().eventId);
    },

    /** The messages of these events' error records, by event id (undefined where there is none). */
    async messages(runId: string, eventIds: readonly string[]): Promise<Map<string, string | undefined>> {
      if (eventIds.length === 0) return new Map();
      const snaps = await db.getAll(...eventIds.map((id) => errors(runId).doc(id)));
      return new Map(snaps.map((s) => [s.id, s.data()?.message]));
    },
  };
}
