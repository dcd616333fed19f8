import type { Firestore } from "firebase-admin/firestore";
import type { TokenVerifier } from "./auth/oidc";
import type { Config } from "./config";
import type { BackfillLog } from "./log";
import type { ChunkQueue } from "./platform/tasks";

/** Named moments where tests inject crashes and transient errors. Never set in production. */
export type FaultPoint =
  /** A delivery has just claimed its chunk (nothing read or written for it yet). */
  | "after-claim"
  | "page-read"
  | "page-half-applied"
  | "before-page-commit"
  | "before-chunk-finish"
  | "before-run-close"
  | "group-transaction"
  /** Right after a group's writes committed: an error here is a commit whose answer was lost. */
  | "group-committed"
  /** A control call has decided on the run as it read it, and has not yet changed anything. */
  | "control-decided"
  /** A retry has been admitted and has not yet reopened its run. */
  | "retry-admitted"
  /** A group's transaction found entries this run had written for its events already (another delivery got there first). */
  | "group-found-written";

export interface FaultInjector {
  /** `writes`: at `group-committed`, the documents the commit wrote. */
  at(
    point: FaultPoint,
    info: { runId?: string; chunkId?: string; cursor?: string | null; phase?: string; writes?: number },
  ): void | Promise<void>;
}

/** Everything a handler needs, built once per instance (or by a test). */
export interface Deps {
  db: Firestore;
  config: Config;
  queue: ChunkQueue;
  log: BackfillLog;
  verifier: TokenVerifier;
  now: () => Date;
  faults?: FaultInjector;
}
