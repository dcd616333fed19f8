import { z } from "zod";
import { EVENT_TYPES, type EventType } from "./types";

/**
 * A webhook event as stored in `webhookEvents/{id}`, once validated. Timestamps arrive as `Date`: the edge
 * converts Firestore Timestamps before calling the core.
 */
export interface WebhookEvent {
  id: string;
  provider: "paynow";
  type: EventType;
  orderId: string;
  userId: string;
  productId: string;
  quantity: number;
  createdAt: Date;
  processed: boolean;
  /** The run that marked it processed; null or absent when live processing did. */
  processedBy: string | null;
}

// Ids become Firestore document ids (`purchase_{orderId}`, `wallets/{userId}`), so they must be usable as one.
const docId = (field: string) =>
  z
    .string({ error: `${field} must be a non-empty string` })
    .min(1, { error: `${field} must be a non-empty string` })
    .max(700, { error: `${field} is longer than 700 characters` })
    .refine((v) => !v.includes("/"), { error: `${field} must not contain "/"` })
    .refine((v) => v !== "." && v !== ".." && !/^__.*__$/.test(v), { error: `${field} is not a usable id` });

const eventSchema = z.object({
  provider: z.literal("paynow", { error: 'provider must be "paynow"' }),
  type: z.enum(EVENT_TYPES, { error: `type must be one of ${EVENT_TYPES.join(", ")}` }),
  orderId: docId("orderId"),
  userId: docId("userId"),
  productId: docId("productId"),
  quantity: z
    .number({ error: "quantity must be an integer of at least 1" })
    .int({ error: "quantity must be an integer of at least 1" })
    .min(1, { error: "quantity must be an integer of at least 1" })
    .nullish()
    .transform((q) => q ?? 1),
  createdAt: z.date({ error: "createdAt must be a Firestore Timestamp" }),
  processed: z.boolean({ error: "processed must be a boolean" }).nullish().transform((p) => p ?? false),
  processedBy: z.string().nullish().transform((p) => p ?? null),
});

export type EventCheck = { ok: true; event: WebhookEvent } | { ok: false; message: string };

/** Validates a raw event document; the message names every field that is wrong. */
export function checkEvent(id: string, data: unknown): EventCheck {
  if (data === undefined || data === null) return { ok: false, message: "event document is missing" };
  const result = eventSchema.safeParse(data);
  if (!result.success) {
    const messages = [...new Set(result.error.issues.map((i) => i.message))];
    return { ok: false, message: messages.join("; ") };
  }
  return { ok: true, event: { id, ...result.data } };
}

/** A product as stored in `products/{id}`. */
export interface Product {
  name: string;
  points: number;
}

export function checkProduct(data: unknown): Product | null {
  const result = z
    .object({ name: z.string().default(""), points: z.number().int().positive().max(Number.MAX_SAFE_INTEGER) })
    .safeParse(data);
  return result.success ? result.data : null;
}
