// `POST /webhooks/paynow`: PayNow's webhooks, received live. In order: the size (413), the signature over
// the raw bytes against every configured secret (400 without its headers, 401 when stale, ahead or
// wrong), then the JSON and PayNow's envelope (400). A refused request stores nothing. A valid webhook is
// stored verbatim under its `event_id` with `create`, so a redelivery (or two deliveries at once) stores
// and applies it once; a money event is then applied with the decision code every run uses, before the
// answer (work after a response is not guaranteed to run). The answer is 2xx once the event is stored,
// whatever applying did: a failure stays on the event (`processed: false`, `lastError`) for the next replay.
import type { Request } from "firebase-functions/v2/https";
import type { Response } from "express";
import type { MoneyOutcome } from "../core/outcomes";
import { checkEnvelope, isMoneyEventType } from "../core/paynow";
import { verifySignature } from "../core/signature";
import type { Deps } from "../deps";
import { applyEvent } from "../ledger/apply";
import { describe } from "../log";
import { eventStore } from "../store/events";

/** Largest webhook accepted: PayNow's events are a few kilobytes; a Firestore document holds 1 MiB. */
export const MAX_WEBHOOK_BYTES = 1024 * 1024;

/** What the receiver answers PayNow (and `npm run paynow -- send` prints). */
export interface WebhookAnswer {
  received: true;
  eventId: string;
  eventType: string;
  /** `created` the first time, `duplicate` for a redelivery (nothing changed). */
  stored: "created" | "duplicate";
  /** What applying it did; null for a duplicate or an event type that moves no money. */
  outcome: MoneyOutcome | { result: "error"; code: "APPLY_FAILED"; message: string } | null;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function refuseEarly(req: Request): void {
  if (req.method !== "POST")
    throw new Refusal(405, "method_not_allowed", `${req.method} is not supported; PayNow POSTs its webhooks`);
  const declared = Number(req.get("content-length") ?? "0");
  if (declared > MAX_WEBHOOK_BYTES || (req.rawBody?.length ?? 0) > MAX_WEBHOOK_BYTES) {
    throw new Refusal(
      413,
      "payload_too_large",
      `The body is over ${MAX_WEBHOOK_BYTES} bytes; PayNow's webhooks are a few kilobytes`,
    );
  }
}

export async function handlePaynowWebhook(deps: Deps, req: Request, res: Response): Promise<void> {
  const raw = req.rawBody ?? Buffer.alloc(0);
  try {
    refuseEarly(req);
    const signature = verifySignature(
      { signature: req.get("paynow-signature"), timestamp: req.get("paynow-timestamp") },
      raw,
      deps.config.webhookSecrets,
      deps.now().getTime(),
    );
    if (!signature.ok) throw new Refusal(signature.status, signature.code, signature.message);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString("utf8"));
    } catch {
      throw new Refusal(400, "invalid_json", "The body is not JSON; PayNow sends {event_type, event_id, body}");
    }
    const envelope = checkEnvelope(parsed);
    if (!envelope.ok) throw new Refusal(400, "invalid_envelope", `Not a PayNow webhook: ${envelope.message}`);

    const answer = await receive(deps, envelope.eventType, envelope.eventId, envelope.body);
    res.status(200).set("Cache-Control", "no-store").json(answer);
  } catch (error) {
    const refusal =
      error instanceof Refusal
        ? error
        : new Refusal(
            500,
            "internal",
            "Unexpected server error; PayNow will retry. Check the function logs (event internal_error).",
          );
    if (!(error instanceof Refusal)) deps.log.internalError("paynow_webhook", error);
    deps.log.webhookRefused({ status: refusal.status, code: refusal.code, bytes: raw.length });
    res
      .status(refusal.status)
      .set("Cache-Control", "no-store")
      .json({ error: { code: refusal.code, message: refusal.message } });
  }
}

async function receive(
  deps: Deps,
  eventType: string,
  eventId: string,
  body: Record<string, unknown>,
): Promise<WebhookAnswer> {
  const events = eventStore(deps.db);
  const stored = await events
    .storeOnce({ event_type: eventType, event_id: eventId, body }, deps.now())
    .catch((error: unknown) => {
      if ((error as { code?: unknown }).code === 3 /* INVALID_ARGUMENT */)
        throw new Refusal(400, "invalid_envelope", `Firestore cannot store this event: ${describe(error)}`);
      throw error;
    });
  let outcome: WebhookAnswer["outcome"] = null;
  if (stored === "created" && isMoneyEventType(eventType)) {
    try {
      outcome = await applyEvent(deps.db, eventId, deps.config, undefined, deps.faults);
    } catch (error) {
      // Stored, not applied: the next replay picks it up. PayNow is not asked to redeliver.
      outcome = { result: "error", code: "APPLY_FAILED", message: describe(error) };
    }
    if (outcome?.result === "error") {
      await events
        .recordError(eventId, { code: outcome.code, message: outcome.message }, deps.now())
        .catch((error: unknown) => deps.log.internalError("paynow_webhook_last_error", error));
    }
  }
  deps.log.webhookReceived({
    eventId,
    eventType,
    stored,
    outcome: outcome?.result ?? null,
    code: outcome?.result === "error" ? outcome.code : null,
  });
  return { received: true, eventId, eventType, stored, outcome };
}
