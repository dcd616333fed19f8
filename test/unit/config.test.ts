import { describe, expect, it } from "vitest";
import { ConfigError, LOCAL_OPERATOR_EMAIL, loadConfig } from "../../functions/src/config";

const prod = { GCLOUD_PROJECT: "store-prod", OIDC_AUDIENCES: '["https://store-prod.web.app"]' };

describe("configuration", () => {
  it("reads list params in the JSON form the runtime passes and in comma-separated form", () => {
    const config = loadConfig({
      ...prod,
      OPERATOR_EMAILS: '["Ops@Example.com"]',
      VIEWER_EMAILS: "a@x.io, b@x.io",
      SCHEDULER_EMAILS: "",
    });
    expect(config.roles).toEqual({ operators: ["ops@example.com"], viewers: ["a@x.io", "b@x.io"], schedulers: [] });
    expect(config.maxActiveRuns).toBe(10);
    expect(config.emulator).toBe(false);
    expect(config.backfillEnabled).toBe(true);
  });

  it("trusts the local operator and key only in the emulator under a demo- project", () => {
    const emulated = loadConfig({
      GCLOUD_PROJECT: "demo-backfill",
      FUNCTIONS_EMULATOR: "true",
      LOCAL_OIDC_PUBLIC_KEY_FILE: "k.pem",
    });
    expect(emulated.emulator).toBe(true);
    expect(emulated.roles.operators).toContain(LOCAL_OPERATOR_EMAIL);
    expect(emulated.localOidcPublicKeyFile).toBe("k.pem");
    const realProject = loadConfig({ ...prod, FUNCTIONS_EMULATOR: "true", LOCAL_OIDC_PUBLIC_KEY_FILE: "k.pem" });
    expect(realProject.emulator).toBe(false);
    expect(realProject.roles.operators).not.toContain(LOCAL_OPERATOR_EMAIL);
    expect(realProject.localOidcPublicKeyFile).toBeNull();
  });

  it.each([
    [{ BACKFILL_ENABLED: "maybe" }, /BACKFILL_ENABLED must be true or false/],
    [{ CHUNK_PAGE_SIZE: "5" }, /CHUNK_PAGE_SIZE must be an integer from 10 to 400/],
    [{ OPERATOR_EMAILS: "[1,2]" }, /OPERATOR_EMAILS must be a JSON array of strings/],
    [{ MAX_ACTIVE_RUNS: "0" }, /MAX_ACTIVE_RUNS must be an integer from 1 to 1000/],
    [{ JOBS_ALLOWED_EMAILS: "ops@x.io" }, /JOBS_ALLOWED_EMAILS was replaced by OPERATOR_EMAILS and SCHEDULER_EMAILS/],
    [{ ADMIN_ALLOWED_EMAILS: "ops@x.io" }, /ADMIN_ALLOWED_EMAILS was replaced by VIEWER_EMAILS and OPERATOR_EMAILS/],
    [{ OIDC_AUDIENCES: "" }, /OIDC_AUDIENCES must list at least one audience/],
  ])("fails at start on a bad setting, naming it: %o", (change, message) => {
    expect(() => loadConfig({ ...prod, ...change })).toThrow(ConfigError);
    expect(() => loadConfig({ ...prod, ...change })).toThrow(message);
  });
});
