// firestore.rules against the Firestore emulator, as a signed-in game client would meet them.
import { readFileSync } from "node:fs";
import {
  assertFails,
  assertSucceeds,
  initializeTestEnvironment,
  type RulesTestEnvironment,
} from "@firebase/rules-unit-testing";
import { collection, doc, getDoc, getDocs, query, setDoc, setLogLevel, where } from "firebase/firestore";
import { afterAll, beforeAll, describe, it } from "vitest";

let env: RulesTestEnvironment;

beforeAll(async () => {
  setLogLevel("silent"); // denied requests are the point here; the SDK would log each one
  const [host, port] = (process.env.FIRESTORE_EMULATOR_HOST ?? "127.0.0.1:8080").split(":");
  env = await initializeTestEnvironment({
    projectId: "demo-backfill-rules",
    firestore: { rules: readFileSync("firestore.rules", "utf8"), host, port: Number(port) },
  });
  await env.clearFirestore();
  await env.withSecurityRulesDisabled(async (ctx) => {
    const db = ctx.firestore();
    await setDoc(doc(db, "wallets/alice"), { balance: 100 });
    await setDoc(doc(db, "wallets/bob"), { balance: 5 });
    await setDoc(doc(db, "ledgerEntries/purchase_a1"), { userId: "alice", points: 100 });
    await setDoc(doc(db, "ledgerEntries/purchase_b1"), { userId: "bob", points: 5 });
    await setDoc(doc(db, "webhookEvents/e1"), { userId: "alice" });
    await setDoc(doc(db, "dataMigrations/webhook_replay_1"), { status: "completed" });
    await setDoc(doc(db, "featureFlags/backfill"), { enabled: true });
    await setDoc(doc(db, "products/gems"), { name: "Gems", points: 100 });
  });
});

afterAll(async () => {
  await env.cleanup();
});

describe("security rules", () => {
  it("let a signed-in user read their own wallet and ledger entries", async () => {
    const db = env.authenticatedContext("alice").firestore();
    await assertSucceeds(getDoc(doc(db, "wallets/alice")));
    await assertSucceeds(getDoc(doc(db, "ledgerEntries/purchase_a1")));
    await assertSucceeds(getDocs(query(collection(db, "ledgerEntries"), where("userId", "==", "alice"))));
  });

  it("keep other users' wallets and entries private", async () => {
    const db = env.authenticatedContext("alice").firestore();
    await assertFails(getDoc(doc(db, "wallets/bob")));
    await assertFails(getDoc(doc(db, "ledgerEntries/purchase_b1")));
    await assertFails(getDocs(collection(db, "ledgerEntries")));
  });

  it("refuse every client write, even to the caller's own wallet", async () => {
    const db = env.authenticatedContext("alice").firestore();
    await assertFails(setDoc(doc(db, "wallets/alice"), { balance: 1_000_000 }));
    await assertFails(setDoc(doc(db, "ledgerEntries/purchase_x"), { userId: "alice", points: 5 }));
    await assertFails(setDoc(doc(db, "products/gems"), { name: "Gems", points: 1 }));
  });

  it.each(["webhookEvents/e1", "dataMigrations/webhook_replay_1", "featureFlags/backfill"])(
    "hide %s from clients",
    async (path) => {
      await assertFails(getDoc(doc(env.authenticatedContext("alice").firestore(), path)));
      await assertFails(setDoc(doc(env.authenticatedContext("alice").firestore(), path), { x: 1 }));
      await assertFails(getDoc(doc(env.unauthenticatedContext().firestore(), path)));
    },
  );

  it("hide wallets from signed-out clients", async () => {
    await assertFails(getDoc(doc(env.unauthenticatedContext().firestore(), "wallets/alice")));
  });

  it("let anyone read the product catalog", async () => {
    await assertSucceeds(getDoc(doc(env.unauthenticatedContext().firestore(), "products/gems")));
  });
});
