// Every failure the client reports is a SwitchboardError: the server's own `error`
// (its code, retryable flag and the message it refused), a refusal the client makes
// before sending (ValidationError, code `bad_request` like the server's), or a
// condition of the connection (`disconnected`, `queue_full`, ...).
import type { ErrorCode, ErrorMessage, MessageId } from "./protocol.js";
import { RETRYABLE_CODES } from "./protocol.gen.js";

/** Codes the client gives itself, beside the server's `ErrorCode`s. */
export type ClientErrorCode =
  | "disconnected" // the connection dropped before the reply: check the state before retrying
  | "queue_full" // offline and the queue is full: try again once connected
  | "closed" // the client was disconnected on purpose
  | "unauthorized" // close 1008 and no new token could be had
  | "http"; // an HTTP answer that was not the API's JSON error

// the server's (ErrorCode::retryable, generated) and the client's own
const RETRYABLE: readonly string[] = [...RETRYABLE_CODES, "queue_full"];

export class SwitchboardError extends Error {
  readonly code: ErrorCode | ClientErrorCode | (string & {});
  readonly retryable: boolean;
  /** The message the server refused, as it echoed it (`original_message`). */
  readonly originalMessage?: unknown;
  readonly id?: MessageId;
  /** The HTTP status, for errors of HTTP calls. */
  readonly status?: number;

  constructor(
    code: SwitchboardError["code"],
    message: string,
    extra: { retryable?: boolean; originalMessage?: unknown; id?: MessageId; status?: number } = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.retryable = extra.retryable ?? RETRYABLE.includes(code);
    this.originalMessage = extra.originalMessage;
    this.id = extra.id;
    this.status = extra.status;
  }

  /** The server's `error` message as an exception. */
  static from(e: ErrorMessage): SwitchboardError {
    return new SwitchboardError(e.code, e.message, {
      retryable: e.retryable,
      originalMessage: e.original_message,
      id: e.id,
    });
  }
}

/** Bad input, refused before anything is sent; `field` and `value` name it. */
export class ValidationError extends SwitchboardError {
  readonly field: string;
  readonly value: unknown;

  constructor(field: string, value: unknown, why: string) {
    super("bad_request", `invalid ${field} ${JSON.stringify(value)}: ${why}`, { retryable: false });
    this.field = field;
    this.value = value;
  }
}
