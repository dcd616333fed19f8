// Stored webhook events (`webhookEvents/{event_id}`): the receiver stores each PayNow delivery once, and
// a money commit marks what it did to it (processed, a dry run's look, the page that counted it). This
// module is the collection's one writer.
import { Timestamp, type Firestore } from "firebase-admin/firestore";
import { refs } from "../platform/collections";
import type { Writer } from "../platform/firestore";

/** An event as the receiver stores it (PayNow's body, untouched, under its envelope's type and id). */
export interface ReceivedEvent {
  event_type: string;
  event_id: string;
  body: Record<string, unknown>;
}

export function eventStore(db: Firestore) {
  const events = refs(db).events;
  return {
    /** Stores a received event unprocessed, once: "duplicate" when its id is stored already. Other failures throw. */
    async storeOnce(event: ReceivedEvent, now: Date): Promise<"created" | "duplicate"> {
      try {
        await events.doc(event.event_id).create({ ...event, createdAt: Timestamp.fromDate(now), processed: false });
        return "created";
      } catch (error) {
        if ((error as { code?: unknown }).code === 6 /* ALREADY_EXISTS */) return "duplicate";
        throw error;
      }
    },

    /** Records on the event why live processing could not apply it (the next replay will try again). */
    async recordError(eventId: string, error: { code: string; message: string }, now: Date): Promise<void> {
      await events.doc(eventId).update({ lastError: { ...error, at: Timestamp.fromDate(now) } });
    },

    /** Adds an event's marks to a money commit: one update per event, whatever its decisions marked. */
    mark(writer: Writer, eventId: string, fields: Record<string, unknown>): void {
      writer.update(events.doc(eventId), fields);
    },
  };
}
