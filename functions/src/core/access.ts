// Who may do what. Three allowlists: viewers may only read; operators may also start runs, control them
// and flip the kill switch; schedulers (Cloud Scheduler's service accounts) may only start runs, and only
// their Cloud Scheduler headers are honoured. An email may be on several lists; it gets every list's rights.

/** What a route needs. */
export type Permission = "read" | "start" | "control";

export interface Roles {
  viewers: readonly string[];
  operators: readonly string[];
  schedulers: readonly string[];
}

export function permissionsOf(email: string, roles: Roles): Set<Permission> {
  const granted = new Set<Permission>();
  if (roles.viewers.includes(email)) granted.add("read");
  if (roles.schedulers.includes(email)) granted.add("start");
  if (roles.operators.includes(email)) ["read", "start", "control"].forEach((p) => granted.add(p as Permission));
  return granted;
}

/** Whether a caller's Cloud Scheduler headers (job name, schedule time) may decide its idempotency key. */
export function honoursSchedulerHeaders(email: string, roles: Roles): boolean {
  return roles.schedulers.includes(email);
}

const WHAT: Record<Permission, string> = {
  read: "read runs",
  start: "start runs",
  control: "change runs or the kill switch",
};
const WHERE: Record<Permission, string> = {
  read: "VIEWER_EMAILS (read only) or OPERATOR_EMAILS",
  start: "OPERATOR_EMAILS (or SCHEDULER_EMAILS for a Cloud Scheduler job)",
  control: "OPERATOR_EMAILS",
};

/** Null when allowed, else the sentence a refused caller reads. */
export function refusal(email: string, needed: Permission, roles: Roles): string | null {
  if (permissionsOf(email, roles).has(needed)) return null;
  return `${email} is not allowed to ${WHAT[needed]}; add it to ${WHERE[needed]} to grant it.`;
}

/** The recurring replay a scheduler is configured for (REPLAY_LOOKBACK_DAYS, REPLAY_DRY_RUN, REPLAY_MAX_EVENTS). */
export interface RecurringReplay {
  lookbackDays: number;
  dryRun: boolean;
  maxEvents: number;
}

const SCHEDULER_FIELDS = new Set(["type", "lookbackDays", "dryRun", "maxEvents"]);

/**
 * Null when a start body is the recurring replay a scheduler may start, else why not. A caller whose only
 * right to start comes from SCHEDULER_EMAILS may start nothing else: no other type, range, mode, cap above
 * the configured one, canary or plan execution. An operator may start anything, scheduler or not.
 */
export function schedulerRefusal(email: string, roles: Roles, body: unknown, replay: RecurringReplay): string | null {
  if (roles.operators.includes(email) || !roles.schedulers.includes(email)) return null;
  const wanted = `{"type": "webhook_replay", "lookbackDays": ${replay.lookbackDays}, "dryRun": ${replay.dryRun}, "maxEvents": at most ${replay.maxEvents}}`;
  const refuse = (what: string) =>
    `${email} is a scheduler (SCHEDULER_EMAILS): it may start only the recurring replay ${wanted}; ${what}. Operators start other runs.`;
  if (typeof body !== "object" || body === null || Array.isArray(body)) return null; // the body's own validation answers
  const b = body as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => !SCHEDULER_FIELDS.has(k));
  if (extra.length > 0) return refuse(`this body also sets ${extra.sort().join(", ")}`);
  if (b.type !== "webhook_replay") return refuse(`this body asks for ${JSON.stringify(b.type)}`);
  if (b.lookbackDays !== replay.lookbackDays)
    return refuse(`this body asks for lookbackDays ${JSON.stringify(b.lookbackDays ?? null)}`);
  if ((b.dryRun ?? true) !== replay.dryRun)
    return refuse(`this body asks for dryRun ${JSON.stringify(b.dryRun ?? true)}`);
  if (typeof b.maxEvents === "number" && b.maxEvents > replay.maxEvents)
    return refuse(`this body asks for maxEvents ${b.maxEvents}`);
  return null;
}
