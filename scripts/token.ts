// `npm run -s token [-- --email <email>]`: prints a bearer token for the local stack and nothing else.
import { parseArgs } from "node:util";
import { mintLocalToken } from "./localToken";

const { values } = parseArgs({ options: { email: { type: "string" } } });
process.stdout.write(`${await mintLocalToken({ email: values.email })}\n`);
