import { describe, expect, it } from "vitest";
import { ConfigError, LOCAL_OPERATOR_EMAIL, loadConfig } from "../../functions/src/config";

const prod = { GCLOUD_PROJECT: "store-prod", OIDC_AUDIENCES: '["https://store-prod.web.app"]' };

describe("configuration", () => {
  it("reads list params in the JSON form the runtime passes and in comma-separated form", () => {
    const config = loadConfig({ ...prod, JOBS_ALLOWED_EMAILS: '["Ops@Example.com"]', ADMIN_ALLOWED_EMAILS: "a@x.io, b@x.io" });
    expect(config.jobsAllowedEmails).toEqual(["ops@example.com"]);
    expect(config.adminAllowedEmails).toEqual(["a@x.io", "b@x.io"]);
    expect(config.emulator).toBe(false);
    expect(config.backfillEnabled).toBe(true);
  });

  it("trusts the local operator and key only in the emulator under a demo- project", () => {
    const emulated = loadConfig({ GCLOUD_PROJECT: "demo-backfill", FUNCTIONS_EMULATOR: "true", LOCAL_OIDC_PUBLIC_KEY_FILE: "k.pem" });
    expect(emulated.emulator).toBe(true);
    expect(emulated.jobsAllowedEmails).toContain(LOCAL_OPERATOR_EMAIL);
    expect(emulated.localOidcPublicKeyFile).toBe("k.pem");
    const realProject = loadConfig({ ...prod, FUNCTIONS_EMULATOR: "true", LOCAL_OIDC_PUBLIC_KEY_FILE: "k.pem" });
    expect(realProject.emulator).toBe(false);
    expect(realProject.jobsAllowedEmails).not.toContain(LOCAL_OPERATOR_EMAIL);
    expect(realProject.localOidcPublicKeyFile).toBeNull();
  });

  it.each([
    [{ BACKFILL_ENABLED: "maybe" }, /BACKFILL_ENABLED must be true or false/],
    [{ CHUNK_PAGE_SIZE: "5" }, /CHUNK_PAGE_SIZE must be an integer from 10 to 400/],
    [{ JOBS_ALLOWED_EMAILS: "[1,2]" }, /JOBS_ALLOWED_EMAILS must be a JSON array of strings/],
    [{ OIDC_AUDIENCES: "" }, /OIDC_AUDIENCES must list at least one audience/],
  ])("fails at start on a bad setting, naming it: %o", (change, message) => {
    expect(() => loadConfig({ ...prod, ...change })).toThrow(ConfigError);
    expect(() => loadConfig({ ...prod, ...change })).toThrow(message);
  });
});
