// Page records (`dataMigrations/{id}/pages/{chunkId}-{n}`): what each committed page examined, one record
// per page, created in the page's own commit (chunks/page.ts) and never changed. The report, the
// auto-pause window and the scan's moved-event check read them here.
import { FieldValue, Timestamp, type Firestore, type WriteBatch } from "firebase-admin/firestore";
import type { Step } from "../core/chunk";
import type { Counters, Phase } from "../core/types";
import { refs } from "../platform/collections";
import { typed } from "../platform/firestore";

/** One examined event in a page record: id, result (p/s/e) and the entry id, skip reason or error code. */
export interface PageOutcome {
  e: string;
  r: "p" | "s" | "e";
  x: string;
}

/**
 * Page outcomes travel as one string, a line per event ("eventId<TAB>p|s|e<TAB>detail"): one field is far
 * cheaper to store and index than an array of maps. A value holding a tab, newline or backslash is written
 * as a JSON string.
 */
export function encodeOutcomes(outcomes: readonly PageOutcome[]): string {
  return outcomes
    .map((o) => [o.e, o.r, o.x].map((v) => (/[\t\n\\]|^"/.test(v) ? JSON.stringify(v) : v)).join("\t"))
    .join("\n");
}

export function decodeOutcomes(text: string): PageOutcome[] {
  if (!text) return [];
  return text.split("\n").map((line) => {
    const [e, r, x] = line.split("\t").map((v) => (v.startsWith('"') ? (JSON.parse(v) as string) : v));
    return { e: e as string, r: r as PageOutcome["r"], x: x as string };
  });
}

/** `dataMigrations/{id}/pages/{chunkId}-{n}`: the events one committed page examined. */
export interface PageDoc extends Counters {
  chunkId: string;
  phase: Phase;
  step: Step["step"];
  at: Timestamp;
  /** One letter per examined event, in page order: p(rocessed), s(kipped), e(rror). */
  bits: string;
  /** Documents the page wrote (ledger, wallets, event marks, error records, bookkeeping). */
  writes: number;
  /** Documents the page read (its scan or errors read, its groups' transactions, its boundary and commit reads). */
  reads?: number;
  /** Every examined event's outcome, encoded by `encodeOutcomes`. */
  outcomes: string;
  /** The wallet the page's processed events moved most often, and how many times its commits wrote it (a hot wallet shows here). */
  busiestWallet?: { userId: string; events: number; writes: number } | null;
}

/** A page record as written: `at` is the commit's server time. */
export type NewPage = Omit<PageDoc, "at">;

export function pageStore(db: Firestore) {
  const pages = (runId: string) => refs(db).pages(runId).withConverter(typed<PageDoc>());
  return {
    /** Adds the page's record to its commit's batch; the commit fails if that page was committed already. */
    create(batch: WriteBatch, runId: string, pageId: string, page: NewPage): void {
      batch.create(pages(runId).doc(pageId), { ...page, at: FieldValue.serverTimestamp() });
    },

    /** The records of these pages that exist, by page id. */
    async getMany(runId: string, pageIds: readonly string[]): Promise<Map<string, PageDoc>> {
      if (pageIds.length === 0) return new Map();
      const snaps = await db.getAll(...pageIds.map((id) => pages(runId).doc(id)));
      return new Map(snaps.flatMap((s) => (s.exists ? [[s.id, s.data() as PageDoc] as const] : [])));
    },

    /** Every record of the run, in commit order. */
    async all(runId: string): Promise<PageDoc[]> {
      return (await pages(runId).orderBy("at").get()).docs.map((d) => d.data());
    },

    /** One chunk's records, in no particular order. */
    async ofChunk(runId: string, chunkId: string): Promise<PageDoc[]> {
      return (await pages(runId).where("chunkId", "==", chunkId).get()).docs.map((d) => d.data());
    },

    /** The outcome letters of the run's latest `limit` pages committed after `since` (epoch ms), newest first. */
    async recentBits(runId: string, since: number | null, limit: number): Promise<string[]> {
      let query = refs(db).pages(runId).orderBy("at", "desc");
      if (since !== null) query = query.where("at", ">", Timestamp.fromMillis(since));
      return (await query.select("bits").limit(limit).get()).docs.map((d) => d.get("bits") as string);
    },
  };
}
