import { HOSTS } from "./hosts";
import type { SeedSummary } from "./seed";
import { BUSY_WEEK, SAMPLE_RANGE } from "./seed";

export function printWelcome(seed: SeedSummary, consoleToken: string): void {
  const body = (type: string, dryRun: boolean) =>
    JSON.stringify({ type, startDate: SAMPLE_RANGE.startDate, endDate: SAMPLE_RANGE.endDate, dryRun });
  console.log(`
────────────────────────────────────────────────────────────────────────────────────────────
 The backfill stack is running (project demo-backfill).
   API       ${HOSTS.api}/api
   Seeded    ${seed.products} products, ${seed.users} customers, ${seed.events - seed.busyWeek} PayNow webhooks from ${SAMPLE_RANGE.startDate} to ${SAMPLE_RANGE.endDate}:
             ${seed.unprocessed} never processed, ${seed.missingReversals} refunds and chargebacks processed without their reversal,
             ${seed.broken} broken, ${seed.otherTypes} of other types (stored, never examined);
             and a busy week, ${BUSY_WEEK.startDate} to ${BUSY_WEEK.endDate}, of ${seed.busyWeek} orders never processed

 In another terminal, in this folder:
   TOKEN=$(npm run -s token)
   curl -s -X POST ${HOSTS.api}/api/jobs/backfill -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" -d '${body("webhook_replay", true)}'

 Then read the run (use the migrationId from the answer):
   curl -s ${HOSTS.api}/api/admin/dataMigrations -H "Authorization: Bearer $TOKEN"
   curl -s ${HOSTS.api}/api/admin/dataMigrations/<migrationId> -H "Authorization: Bearer $TOKEN"

 Or follow it in a terminal:   npm run backfill -- status <migrationId> --watch
 Or on the console (this link carries a local token valid for an hour):
   ${HOSTS.api}/admin/#token=${consoleToken}
 (New run → a dry run → Execute this plan → the real run, compared with its dry run.)

 The README's runbook walks through dry run, canary, real run, retry, reversal backfill and checks. Ctrl-C stops the stack.
────────────────────────────────────────────────────────────────────────────────────────────
`);
}
