// Every emulator test file starts from an empty Firestore. Files run one at a time and each builds its own
// store (in a year of its own), so none needs another's data; but the emulator answers a query in time
// proportional to the whole collection, and PayNow's events are about 5 KB each: what earlier files left
// behind would otherwise slow every later file down (the model-based test took 2.7× longer after the
// fault suites than on its own).
import { beforeAll } from "vitest";
import { clearFirestore } from "./emulator";

beforeAll(async () => {
  await clearFirestore();
}, 60_000);
