// Builds the handlers' dependencies once per instance, from the environment the params populate.
import { resolve } from "node:path";
import { getFirestore } from "firebase-admin/firestore";
import { OAuth2Client } from "google-auth-library";
import { createTokenVerifier, googleKeySet, localKeySet } from "./auth/oidc";
import { ConfigError, LOCAL_ISSUER, loadConfig } from "./config";
import type { Deps } from "./deps";
import { BackfillLog, stdoutWriter } from "./log";
import { firebaseChunkQueue } from "./platform/tasks";

let instance: Deps | undefined;

export function buildDeps(env: Record<string, string | undefined> = process.env): Deps {
  if (instance) return instance;
  const config = loadConfig(env);
  const client = new OAuth2Client();
  let local;
  if (config.localOidcPublicKeyFile) {
    const file = resolve(process.cwd(), config.localOidcPublicKeyFile);
    try {
      local = localKeySet(file, LOCAL_ISSUER);
    } catch {
      throw new ConfigError(
        `LOCAL_OIDC_PUBLIC_KEY_FILE: ${file} cannot be read; run \`npm run setup\` to create the local token key.`,
      );
    }
  }
  instance = {
    db: getFirestore(),
    config,
    queue: firebaseChunkQueue({
      projectId: config.projectId,
      emulator: config.emulator || Boolean(env.CLOUD_TASKS_EMULATOR_HOST),
    }),
    log: new BackfillLog(stdoutWriter(config.projectId)),
    verifier: createTokenVerifier({ audiences: config.oidcAudiences, google: googleKeySet(client), local, client }),
    now: () => new Date(),
  };
  return instance;
}
