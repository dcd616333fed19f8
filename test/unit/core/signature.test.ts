// PayNow's signature scheme: base64 HMAC-SHA256 of `<timestamp>.<raw body>`, timestamp in Unix ms, any of
// the configured secrets, 5 minutes either way. The vector below is the one in
// ../shared/reference/paynow-webhooks.md §2 (computed there with Python's hmac and openssl).
import { describe, expect, it } from "vitest";
import { signPayload, verifySignature } from "../../../functions/src/core/signature";

const SECRET = "pnwh_test_4c1f0b9a2e7d";
const TS = "1778782904000";
const BODY = Buffer.from(
  '{"event_type":"ON_REFUND","event_id":"613044961375547392","body":{"id":"613044950126424064"}}',
);
const SIG = "qyyW0e549/cn+JgDOQkMUKGjyw4aRHf99/c6bsVP/Ic=";
const NOW = Number(TS) + 1000;

describe("PayNow webhook signatures", () => {
  it("match the published scheme's test vector", () => {
    expect(signPayload(SECRET, TS, BODY)).toBe(SIG);
    expect(verifySignature({ signature: SIG, timestamp: TS }, BODY, [SECRET], NOW)).toEqual({
      ok: true,
      secretIndex: 0,
    });
  });

  it("accept any configured secret (each subscription has its own)", () => {
    expect(verifySignature({ signature: SIG, timestamp: TS }, BODY, ["pnwh_other", SECRET], NOW)).toEqual({
      ok: true,
      secretIndex: 1,
    });
  });

  const hex = "ab2c96d1ee78f7f727f8980339090c50a1a3cb0e1a4477fdf7f73a6ec54ffc87";
  it.each([
    [
      "a tampered body",
      { signature: SIG, timestamp: TS },
      Buffer.from(BODY.toString().replace("613044950126424064", "613044950126424065")),
      [SECRET],
      NOW,
      401,
      "signature_invalid",
    ],
    ["a wrong secret", { signature: SIG, timestamp: TS }, BODY, ["pnwh_wrong"], NOW, 401, "signature_invalid"],
    ["no secret configured", { signature: SIG, timestamp: TS }, BODY, [], NOW, 401, "signature_invalid"],
    ["hex instead of base64", { signature: hex, timestamp: TS }, BODY, [SECRET], NOW, 401, "signature_invalid"],
    [
      "a signed timestamp that is not the header's",
      { signature: SIG, timestamp: String(Number(TS) + 1) },
      BODY,
      [SECRET],
      NOW,
      401,
      "signature_invalid",
    ],
    [
      "a stale timestamp",
      { signature: SIG, timestamp: TS },
      BODY,
      [SECRET],
      Number(TS) + 5 * 60_000 + 1,
      401,
      "timestamp_out_of_range",
    ],
    [
      "a future timestamp",
      { signature: SIG, timestamp: TS },
      BODY,
      [SECRET],
      Number(TS) - 5 * 60_000 - 1,
      401,
      "timestamp_out_of_range",
    ],
    [
      "seconds instead of milliseconds",
      { signature: SIG, timestamp: "1778782904" },
      BODY,
      [SECRET],
      NOW,
      401,
      "timestamp_out_of_range",
    ],
    ["a missing signature", { signature: undefined, timestamp: TS }, BODY, [SECRET], NOW, 400, "signature_missing"],
    ["a missing timestamp", { signature: SIG, timestamp: undefined }, BODY, [SECRET], NOW, 400, "signature_missing"],
    [
      "a timestamp that is not a number",
      { signature: SIG, timestamp: "2026-05-14T18:21:44Z" },
      BODY,
      [SECRET],
      NOW,
      400,
      "timestamp_invalid",
    ],
  ] as const)("refuse %s", (_name, headers, body, secrets, now, status, code) => {
    expect(verifySignature(headers, body, secrets, now)).toMatchObject({ ok: false, status, code });
  });

  it("accept the edges of the tolerance", () => {
    expect(verifySignature({ signature: SIG, timestamp: TS }, BODY, [SECRET], Number(TS) + 5 * 60_000).ok).toBe(true);
    expect(verifySignature({ signature: SIG, timestamp: TS }, BODY, [SECRET], Number(TS) - 5 * 60_000).ok).toBe(true);
  });
});
