// `npm run -s killswitch -- off|on|status [--api URL] [--token T] [--email E]`: the runtime kill switch
// (featureFlags/backfill) through the API, exactly as the console flips it: an operator's token, the role
// check, a `kill_switch_set` log line and `updatedBy`. Same options as `npm run backfill`.
//
// Break glass, only when the API itself is down: `-- off --break-glass --project <id> --by <your email>`
// writes the flag with the Admin SDK under Application Default Credentials (which need Firestore write
// access), recording `updatedBy` and `updatedVia: "break-glass"`; nothing checks a role there, so say so in
// the incident channel. Without --project it targets the local stack.
import { parseArgs } from "node:util";
import { initializeApp } from "firebase-admin/app";
import { getFirestore } from "firebase-admin/firestore";
import { writeKillSwitch } from "../functions/src/store/killSwitch";
import { main } from "./cli";
import { HOSTS } from "./hosts";
import { PROJECT_ID } from "./setup";

async function breakGlass(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { "break-glass": { type: "boolean" }, project: { type: "string" }, by: { type: "string" } },
  });
  const action = positionals[0];
  if ((action !== "on" && action !== "off") || !values.by || !/^[^\s@]+@[^\s@]+$/.test(values.by)) {
    console.error("usage: npm run -s killswitch -- off|on --break-glass --by <your email> [--project <id>]");
    return 2;
  }
  if (!values.project) process.env.FIRESTORE_EMULATOR_HOST ??= HOSTS.firestore;
  initializeApp({ projectId: values.project ?? PROJECT_ID });
  await writeKillSwitch(getFirestore(), action === "on", { email: values.by, sub: null, via: "break-glass" });
  console.log(
    `backfill ${action === "on" ? "enabled" : "DISABLED"} by break glass (featureFlags/backfill written directly, recorded as ${values.by}) in ${values.project ?? `${PROJECT_ID} (local stack)`}`,
  );
  return 0;
}

const argv = process.argv.slice(2);
process.exitCode = argv.includes("--break-glass")
  ? await breakGlass(argv)
  : await main(["killswitch", ...argv], {
      out: (l) => console.log(l),
      err: (l) => console.error(l),
      isTTY: Boolean(process.stdout.isTTY),
    });
