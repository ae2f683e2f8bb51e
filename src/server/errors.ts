/** HTTP errors in the OpenAI error format: {"error": {"message", "type", "param", "code"}}. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Extra response headers (Retry-After on 429/503). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  toJSON(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 about one request field (`param` is its path, e.g. "messages[1].content"). */
export const badRequest = (param: string | null, message: string, code: string | null = 'invalid_value'): HttpError =>
  new HttpError(400, message, 'invalid_request_error', param, code);
