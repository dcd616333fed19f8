// Mutation testing of the pure core (functions/src/core) against its unit tests: `npm run mutation`.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate: ["functions/src/core/**/*.ts"],
  testRunner: "vitest",
  vitest: { configFile: "vitest.mutation.config.ts", related: false },
  plugins: ["@stryker-mutator/vitest-runner"],
  coverageAnalysis: "perTest",
  reporters: ["clear-text", "json", "progress"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: false, reportScoreTable: true },
  tempDirName: ".cache/stryker-tmp",
  cleanTempDir: "always",
  concurrency: 2,
  thresholds: { high: 90, low: 85, break: null },
};
