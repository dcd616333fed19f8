// Each operator authenticates as themselves (issue 18 item 11): docs/deploy.md gives every person a service
// account only they may mint ID tokens for, and the CLI, with those impersonated credentials as its
// Application Default Credentials, asks IAM for an ID token of that account, email included, for the API's
// URL. Checked here: the documented commands, and the CLI's own token path against google-auth-library with
// the network calls stubbed at the library's HTTP boundary (there is no IAM to call on this machine). That
// runs and actions record the token's email is test/emulator/http/api.roles.test.ts's.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OAuth2Client } from "google-auth-library";
import { afterEach, describe, expect, it, vi } from "vitest";
import { repoRoot } from "../../support/repo";
import { authorization } from "../../../scripts/cli";

const root = repoRoot;
const deploy = readFileSync(join(root, "docs", "deploy.md"), "utf8");
const blocks = [...deploy.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].map((m) =>
  (m[1] as string).replace(/\s*\\\n\s*/g, " "),
);

describe("operators as themselves (docs/deploy.md)", () => {
  it("gives each person an account of their own, and no shared operator account anywhere in the docs", () => {
    for (const file of ["README.md", "docs/deploy.md", "docs/operations.md", "docs/configuration.md"]) {
      expect(readFileSync(join(root, file), "utf8"), file).not.toMatch(/backfill-operator@/);
    }
    const lists = /OPERATOR_EMAILS=(\S+)/.exec(deploy)?.[1]?.split(",") ?? [];
    expect(lists.length).toBeGreaterThan(1);
    for (const email of lists)
      expect(email, "one account per person").toMatch(/^op-[a-z]+@<project-id>\.iam\.gserviceaccount\.com$/);
    const commands = blocks.join("\n");
    // Created per person, and only that person may mint its tokens (on the account, not the project).
    expect(commands).toMatch(/gcloud iam service-accounts create op-alice /);
    expect(commands).toMatch(
      /gcloud iam service-accounts add-iam-policy-binding op-alice@<project-id>\.iam\.gserviceaccount\.com --member=user:alice@example\.com --role=roles\/iam\.serviceAccountOpenIdTokenCreator/,
    );
    expect(commands).not.toMatch(/projects add-iam-policy-binding[^\n]*serviceAccountOpenIdTokenCreator/);
    // Her token is her account's, for the API's URL, with the email the allowlist checks.
    expect(commands).toMatch(
      /gcloud auth print-identity-token --impersonate-service-account=op-alice@<project-id>\.iam\.gserviceaccount\.com --audiences="\$BACKFILL_API_URL" --include-email/,
    );
  });
});

describe("the CLI with impersonated application default credentials", () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  it("asks IAM for an ID token of the operator's own account, with its email, for the API's URL", async () => {
    const api = "https://store-prod.web.app";
    const account = "op-alice@store-prod.iam.gserviceaccount.com";
    // What `gcloud auth application-default login --impersonate-service-account=…` writes.
    const dir = mkdtempSync(join(tmpdir(), "adc-"));
    const file = join(dir, "application_default_credentials.json");
    writeFileSync(
      file,
      JSON.stringify({
        type: "impersonated_service_account",
        service_account_impersonation_url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${account}:generateAccessToken`,
        source_credentials: {
          type: "authorized_user",
          client_id: "764086051850-example.apps.googleusercontent.com",
          client_secret: "d-FL95Q19q7MQmFpd7hHD0Ty",
          refresh_token: "1//0example-refresh-token",
        },
        delegates: [],
      }),
    );
    vi.stubEnv("GOOGLE_APPLICATION_CREDENTIALS", file);
    vi.stubEnv("BACKFILL_TOKEN", "");
    // Alice's own login (the source credentials) and IAM's answer, stubbed where the library makes its calls.
    vi.spyOn(OAuth2Client.prototype, "getAccessToken").mockResolvedValue({
      token: "alice-access-token",
      res: null,
    } as never);
    const asked: Array<{ url: string; data: unknown }> = [];
    vi.spyOn(OAuth2Client.prototype, "request").mockImplementation(((opts: { url: string; data: unknown }) => {
      asked.push({ url: opts.url, data: opts.data });
      return Promise.resolve({ data: { token: "id-token-of-op-alice" } });
    }) as never);

    expect(await authorization({ api, json: false })).toBe("Bearer id-token-of-op-alice");
    expect(asked).toEqual([
      {
        url: `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${account}:generateIdToken`,
        data: expect.objectContaining({ audience: api, includeEmail: true }),
      },
    ]);
  });
});
