#!/usr/bin/env node
// The `backfill` command (package.json "bin"): runs scripts/cli.ts through tsx, which also loads the
// TypeScript sources it shares with the functions.
import { register as registerCjs } from "tsx/cjs/api";
import { register as registerEsm } from "tsx/esm/api";

registerCjs();
registerEsm();
await import("../scripts/cli.ts");
