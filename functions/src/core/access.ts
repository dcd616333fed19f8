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
