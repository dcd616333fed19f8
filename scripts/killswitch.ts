// `npm run -s killswitch -- off|on|status [--project <id>]`: flips featureFlags/backfill.enabled.
// Without --project it targets the local stack; with it, the real project through Application Default
// Credentials (gcloud auth application-default login).
import { parseArgs } from "node:util";
import { initializeApp } from "firebase-admin/app";
import { FieldValue, getFirestore } from "firebase-admin/firestore";
import { HOSTS } from "./hosts";
import { PROJECT_ID } from "./setup";

const { positionals, values } = parseArgs({ allowPositionals: true, options: { project: { type: "string" } } });
const action = positionals[0];
if (!action || !["on", "off", "status"].includes(action)) {
  console.error("usage: npm run -s killswitch -- off|on|status [--project <id>]");
  process.exit(2);
}
if (!values.project) process.env.FIRESTORE_EMULATOR_HOST ??= HOSTS.firestore;
initializeApp({ projectId: values.project ?? PROJECT_ID });
const ref = getFirestore().collection("featureFlags").doc("backfill");
if (action !== "status") {
  await ref.set({ enabled: action === "on", updatedAt: FieldValue.serverTimestamp() }, { merge: true });
}
const snap = await ref.get();
const enabled: unknown = snap.exists ? snap.get("enabled") : undefined;
const state = !snap.exists || enabled === true || enabled === undefined ? "enabled" : "DISABLED";
console.log(`backfill ${state} (featureFlags/backfill ${snap.exists ? JSON.stringify({ enabled }) : "missing"}) in ${values.project ?? `${PROJECT_ID} (local stack)`}`);
