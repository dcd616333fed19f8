// The local stack's PayNow, as a payment provider's CLI would be:
//   npm run -s paynow -- secret                   the local receiver's signing secret
//   npm run -s paynow -- example <kind>           a PayNow payload (order, gift, refund, chargeback, closing)
//   npm run -s paynow -- send <file|->            signs a payload the way PayNow does and posts it to the
//                                                 local receiver, printing the answer
// Options of send: --url (default http://127.0.0.1:5000/webhooks/paynow), --secret (default the local one).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { signPayload } from "../functions/src/core/signature";
import { example, EXAMPLE_KINDS, type ExampleKind } from "./paynow-payloads";
import { ensureLocalWebhookSecrets } from "./setup";

export const LOCAL_WEBHOOK_URL = "http://127.0.0.1:5000/webhooks/paynow";

const USAGE = `Usage: npm run -s paynow -- <command>
  secret                     print the local stack's PayNow webhook signing secret
  example <${EXAMPLE_KINDS.join("|")}>   print a PayNow webhook payload (one order, its refund, chargeback and closing)
  send <file|-> [--url URL] [--secret S]
                             sign the payload as PayNow does (PayNow-Signature, PayNow-Timestamp) and POST it`;

export async function paynowCommand(
  argv: string[],
  io: { out: (s: string) => void; err: (s: string) => void; stdin: () => string },
): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { url: { type: "string" }, secret: { type: "string" } },
  });
  const [command, arg] = positionals;
  if (command === "secret") {
    io.out(ensureLocalWebhookSecrets()[0]);
    return 0;
  }
  if (command === "example") {
    if (!EXAMPLE_KINDS.includes(arg as ExampleKind)) {
      io.err(`example needs one of ${EXAMPLE_KINDS.join(", ")}`);
      return 2;
    }
    io.out(JSON.stringify(example(arg as ExampleKind), null, 2));
    return 0;
  }
  if (command === "send") {
    if (!arg) {
      io.err("send needs a file with the payload, or - for standard input");
      return 2;
    }
    const body = arg === "-" ? io.stdin() : readFileSync(arg, "utf8");
    const timestamp = String(Date.now());
    const secret = values.secret ?? ensureLocalWebhookSecrets()[0];
    const url = values.url ?? LOCAL_WEBHOOK_URL;
    let response: Response;
    try {
      response = await fetch(url, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "PayNow-Signature": signPayload(secret, timestamp, body),
          "PayNow-Timestamp": timestamp,
        },
        body,
      });
    } catch (error) {
      io.err(`Could not reach ${url} (${(error as Error).message}). Is the local stack running (npm start)?`);
      return 1;
    }
    io.out(`${response.status} ${await response.text()}`);
    return response.ok ? 0 : 1;
  }
  io.err(USAGE);
  return 2;
}

if (process.argv[1]?.endsWith("paynow.ts")) {
  process.exitCode = await paynowCommand(process.argv.slice(2), {
    out: (s) => console.log(s),
    err: (s) => console.error(s),
    stdin: () => readFileSync(0, "utf8"),
  });
}
