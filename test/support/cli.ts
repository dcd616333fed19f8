// The CLI as the emulator suites run it: the same main() the `backfill` bin runs, against the local stack,
// with its output captured.
import { main, type Output } from "../../scripts/cli";
import { requireStack } from "./emulator";

export async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Output = { out: (l) => out.push(l), err: (l) => err.push(l), isTTY: false };
  const code = await main(["--api", requireStack().api, ...args], io);
  return { code, out, err };
}
