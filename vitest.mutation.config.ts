import { defineConfig } from "vitest/config";

// The unit tests alone, for Stryker: they need no emulator and run in seconds.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
  },
});
