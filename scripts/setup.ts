// Prepares what the local stack needs and git does not carry: a launcher for the Debian Firestore
// emulator jar, and the key pair that signs local operator tokens. Idempotent; safe to run every time.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { localKeyId } from "../functions/src/auth/oidc";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const CACHE_DIR = join(ROOT, ".cache");
export const LOCAL_OIDC_DIR = join(CACHE_DIR, "local-oidc");
export const PROJECT_ID = "demo-backfill";

/** Where Debian's google-cloud-cli-firestore-emulator package puts the emulator jar. */
export const DEBIAN_FIRESTORE_JAR =
  "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar";
const FIRESTORE_MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore";

/**
 * The Debian jar has no Main-Class, and firebase-tools starts emulators with `java -jar`. A tiny jar whose
 * manifest names the main class and puts the Debian jar on its class path bridges the two. Returns the
 * launcher's path, or null when the package is absent (firebase-tools then downloads its own jar).
 */
export function ensureFirestoreLauncher(): string | null {
  const source = process.env.FIRESTORE_EMULATOR_JAR ?? DEBIAN_FIRESTORE_JAR;
  if (!existsSync(source)) return null;
  const dir = join(CACHE_DIR, "firestore-emulator");
  const launcher = join(dir, "firestore-launcher.jar");
  const manifest = `Main-Class: ${FIRESTORE_MAIN_CLASS}\nClass-Path: file:${source}\n`;
  const manifestFile = join(dir, "manifest.txt");
  if (existsSync(launcher) && existsSync(manifestFile) && readFileSync(manifestFile, "utf8") === manifest)
    return launcher;
  mkdirSync(dir, { recursive: true });
  writeFileSync(manifestFile, manifest);
  try {
    execFileSync("jar", ["cfm", launcher, manifestFile], { stdio: "pipe" });
  } catch (error) {
    throw new Error(
      `Could not build the Firestore emulator launcher with the JDK's 'jar' tool (${String(error)}). ` +
        "Install a JDK (e.g. openjdk-17-jdk-headless).",
    );
  }
  return launcher;
}

/**
 * The RSA key pair of local operator tokens. The private key signs them (`npm run token`); the emulated
 * functions trust the public key only inside the emulator, under a demo- project.
 */
export function ensureLocalOidcKeys(): { privatePath: string; publicPath: string; kid: string } {
  const privatePath = join(LOCAL_OIDC_DIR, "private.pem");
  const publicPath = join(LOCAL_OIDC_DIR, "public.pem");
  if (!existsSync(privatePath) || !existsSync(publicPath)) {
    mkdirSync(LOCAL_OIDC_DIR, { recursive: true });
    const { privateKey, publicKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
    });
    writeFileSync(privatePath, privateKey, { mode: 0o600 });
    writeFileSync(publicPath, publicKey);
  }
  return { privatePath, publicPath, kid: localKeyId(readFileSync(publicPath, "utf8")) };
}

/** The local stack's secrets file: the Functions emulator reads it instead of Secret Manager. */
export const LOCAL_SECRETS_FILE = join(ROOT, "functions", ".secret.local");

/**
 * The local stack's own PayNow webhook signing secrets (never in the repository, never production's), made
 * once per clone: two, as a store with two PayNow webhook subscriptions has. `npm run -s paynow -- secret`
 * prints the first, and `npm run -s paynow -- send` signs with it.
 */
export function ensureLocalWebhookSecrets(): [string, string] {
  const line = existsSync(LOCAL_SECRETS_FILE)
    ? /^PAYNOW_WEBHOOK_SECRETS=(.+)$/m.exec(readFileSync(LOCAL_SECRETS_FILE, "utf8"))?.[1]
    : undefined;
  const existing = (line ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (existing.length >= 2) return [existing[0] as string, existing[1] as string];
  const secrets: [string, string] = [
    `pnwh_local_${randomBytes(16).toString("hex")}`,
    `pnwh_local_${randomBytes(16).toString("hex")}`,
  ];
  writeFileSync(
    LOCAL_SECRETS_FILE,
    `# The local stack's PayNow webhook secrets (functions emulator only). Made by scripts/setup.ts.\nPAYNOW_WEBHOOK_SECRETS=${secrets.join(",")}\n`,
    { mode: 0o600 },
  );
  return secrets;
}

/**
 * JVM settings for the Firestore emulator: the serial collector with a fixed young generation spends less
 * of a 2-core machine on garbage collection than the default G1 (measured: about 15% less emulator CPU per
 * replayed event). Overridable through JAVA_TOOL_OPTIONS.
 */
export const EMULATOR_JVM_OPTIONS = "-XX:+UseSerialGC -Xms1g -Xmn512m";

/** Environment for firebase-tools: the Firestore launcher when there is one, and no update checks. */
export function stackEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    NO_UPDATE_NOTIFIER: "1",
    JAVA_TOOL_OPTIONS: base.JAVA_TOOL_OPTIONS ?? EMULATOR_JVM_OPTIONS,
  };
  const launcher = ensureFirestoreLauncher();
  if (launcher && !base.FIRESTORE_EMULATOR_BINARY_PATH) env.FIRESTORE_EMULATOR_BINARY_PATH = launcher;
  ensureLocalOidcKeys();
  ensureLocalWebhookSecrets();
  return env;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const launcher = ensureFirestoreLauncher();
  const { publicPath } = ensureLocalOidcKeys();
  console.log(
    launcher
      ? `Firestore emulator launcher: ${launcher}`
      : "Firestore emulator: firebase-tools will download its own jar",
  );
  console.log(`Local token key: ${publicPath}`);
  ensureLocalWebhookSecrets();
  console.log(`Local PayNow webhook secret: ${LOCAL_SECRETS_FILE}`);
}
