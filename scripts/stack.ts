// The local stack: Firestore, Functions, Cloud Tasks and Hosting emulators under project demo-backfill.
//
//   tsx scripts/stack.ts start                 build, start, seed sample data, keep serving (npm start)
//   tsx scripts/stack.ts exec -- "<command>"   build, start, run the command, stop; exits with its code
//
// Emulator output (including every structured log line the functions write) is kept in
// .cache/logs/emulators.log; tests read it through BACKFILL_EMULATOR_LOG. In exec mode the terminal shows
// only the command's own output (STACK_VERBOSE=1 shows everything).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { clientEnv, HOSTS, LOG_FILE } from "./hosts";
import { CACHE_DIR, PROJECT_ID, ROOT, stackEnv } from "./setup";

/** firebase-tools prefixes its own lines; anything else on its stdout comes from the command it runs. */
const EMULATOR_LINE =
  /^(?:[i✔⚠⬢✖!]\s{1,2}\S|>\s\s|\[(?:hosting|debug|info|warn)\]|\s*$|Serving at port|\(node:\d+\)|\(Use `node --trace|\s+- URL: |\s- Be careful)/u;

/** Compiles the functions and bundles the console (hosting/admin/admin.js). */
function build(): void {
  const result = spawnSync("npx", ["tsc", "-p", "functions"], { cwd: ROOT, stdio: "inherit" });
  if (result.status !== 0) {
    console.error("The functions did not compile; fix the errors above and try again.");
    process.exit(result.status ?? 1);
  }
  const client = spawnSync("npx", ["tsx", "scripts/build-console.ts"], { cwd: ROOT, stdio: "inherit" });
  if (client.status !== 0) {
    console.error("The console did not bundle; fix the errors above and try again.");
    process.exit(client.status ?? 1);
  }
}

function firebase(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn("npx", ["firebase", "--non-interactive", ...args, "--project", PROJECT_ID], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
}

/** Copies the child's output to the log file, and to the terminal where `show` says so. */
function relay(child: ChildProcess, show: (line: string) => boolean): Promise<void> {
  mkdirSync(join(CACHE_DIR, "logs"), { recursive: true });
  const log = createWriteStream(LOG_FILE, { flags: "w" });
  const streams = [child.stdout, child.stderr].filter((s) => s !== null);
  const done = streams.map(
    (stream) =>
      new Promise<void>((resolve) => {
        const lines = createInterface({ input: stream });
        lines.on("line", (line) => {
          log.write(`${line}\n`);
          if (show(line)) process.stdout.write(`${line}\n`);
        });
        lines.on("close", resolve);
      }),
  );
  return Promise.all(done).then(() => new Promise<void>((resolve) => log.end(resolve)));
}

function forwardSignals(child: ChildProcess): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      if (child.pid) process.kill(-child.pid, signal);
    });
  }
}

function exitCode(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0))));
}

async function waitForApi(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${HOSTS.api}/api/admin/dataMigrations`);
      if (res.status === 401) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline)
      throw new Error(`The API did not answer at ${HOSTS.api} within ${timeoutMs / 1000}s; see ${LOG_FILE}.`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function start(): Promise<number> {
  build();
  const child = firebase(["emulators:start"], stackEnv());
  forwardSignals(child);
  const relayed = relay(child, () => true);
  const code = exitCode(child);
  try {
    await Promise.race([
      waitForApi(180_000),
      code.then((c) => Promise.reject(new Error(`the emulators exited with code ${c}`))),
    ]);
  } catch (error) {
    console.error(`The local stack did not start: ${(error as Error).message}`);
    if (child.pid) process.kill(-child.pid, "SIGINT");
    await relayed;
    return 1;
  }
  Object.assign(process.env, clientEnv());
  const { seedSampleData } = await import("./seed");
  const summary = await seedSampleData();
  const { printWelcome } = await import("./welcome");
  const { mintLocalToken } = await import("./localToken");
  printWelcome(summary, await mintLocalToken());
  const exit = await code;
  await relayed;
  return exit;
}

async function exec(command: string): Promise<number> {
  build();
  const verbose = process.env.STACK_VERBOSE === "1";
  const env = clientEnv(stackEnv());
  const child = firebase(
    ["emulators:exec", "--log-verbosity", process.env.STACK_LOG_VERBOSITY ?? "QUIET", command],
    env,
  );
  forwardSignals(child);
  const relayed = relay(child, (line) => verbose || !EMULATOR_LINE.test(line));
  const code = await exitCode(child);
  await relayed;
  if (code !== 0 && !verbose) console.error(`(exit code ${code}; the emulators' output is in ${LOG_FILE})`);
  return code;
}

const [mode, ...rest] = process.argv.slice(2);
const args = rest[0] === "--" ? rest.slice(1) : rest;
if (mode === "start") {
  process.exit(await start());
} else if (mode === "exec" && args.length > 0) {
  process.exit(await exec(args.join(" ")));
} else {
  console.error('usage: tsx scripts/stack.ts start | exec -- "<command>"');
  process.exit(2);
}
