import { join } from "node:path";
import { CACHE_DIR, PROJECT_ID } from "./setup";

/** Where the emulators' output, including the functions' structured logs, is kept. */
export const LOG_FILE = join(CACHE_DIR, "logs", "emulators.log");

/** Addresses of the local stack (firebase.json's emulator ports). */
export const HOSTS = {
  api: "http://127.0.0.1:5000",
  hub: "127.0.0.1:4400",
  firestore: "127.0.0.1:8080",
  tasks: "127.0.0.1:9499",
  functions: "127.0.0.1:5001",
};

/** Environment of a process that talks to the running stack. */
export function clientEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    GCLOUD_PROJECT: PROJECT_ID,
    FIRESTORE_EMULATOR_HOST: HOSTS.firestore,
    CLOUD_TASKS_EMULATOR_HOST: HOSTS.tasks,
    FIREBASE_EMULATOR_HUB: HOSTS.hub,
    BACKFILL_API_URL: HOSTS.api,
    BACKFILL_EMULATOR_LOG: LOG_FILE,
  };
}
