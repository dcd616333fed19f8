import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // The property tests take 4–5 s each alone (fast-check, hundreds of cases): vitest's 5 s default
          // timed two of them out on a busy 2-core machine.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: "emulator",
          include: ["test/emulator/**/*.test.ts"],
          setupFiles: ["test/support/fresh.ts"],
          // One Firestore and one task queue serve every test: files run one at a time.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Emulated functions answer in milliseconds once warm, but a cold worker takes seconds.
          expect: { poll: { timeout: 20_000, interval: 200 } },
        },
      },
    ],
  },
});
