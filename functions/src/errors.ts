import type { FieldProblem } from "./core/request";

/** An error a caller can act on: a stable code, an HTTP status and a sentence saying what to do. */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "AppError";
  }

  toJSON(): { error: { code: string; message: string; details?: unknown } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

export const invalidRequest = (problems: FieldProblem[]) =>
  new AppError(400, "invalid_request", `The request is invalid: ${problems.map((p) => p.message).join("; ")}.`, {
    fields: problems,
  });
