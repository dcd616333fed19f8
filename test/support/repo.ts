// The repository's files, for the tests that check docs and source against each other.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The repository's root directory. */
export const repoRoot = join(__dirname, "..", "..");

/** A file of the repository, by its path from the root. */
export const readRepoFile = (path: string): string => readFileSync(join(repoRoot, path), "utf8");
