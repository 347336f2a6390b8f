// The checks the server makes, made before sending, so bad input fails at the call
// that passed it (with its name and value) rather than as a later `error` frame.
// Messages mirror `TopicError` (topic.rs) and `check_event` (server hub).
import { ValidationError } from "./errors.js";

import { MAX_TOPIC_LEN } from "./protocol.gen.js";
export { MAX_TOPIC_LEN };
export const MAX_EVENT_LEN = 128;
/** The server's default `max_message_bytes`, until its `hello` says otherwise. */
export const DEFAULT_MAX_MESSAGE_BYTES = 65536;

const encoder = new TextEncoder();
/** UTF-8 length, which is what the server's limits count. */
export const byteLength = (s: string): number => encoder.encode(s).length;

/** Why `topic` is not a topic name (`[a-z0-9_.:-]{1,128}`), or "" when it is one. */
export function topicProblem(topic: string): string {
  const n = byteLength(topic);
  const bad = /[^a-z0-9_.:-]/u.exec(topic);
  return !topic
    ? "topic name is empty"
    : n > MAX_TOPIC_LEN
      ? `topic name is ${n} bytes long; at most ${MAX_TOPIC_LEN} are allowed`
      : bad
        ? `topic name has the character '${bad[0]}'; only a-z, 0-9, '_', '.', ':' and '-' are allowed`
        : "";
}

/** Returns `topic` when it is a valid topic name, else throws a ValidationError naming it. */
export function checkTopic(topic: unknown, field = "topic"): string {
  const why = typeof topic == "string" ? topicProblem(topic) : "a topic name must be a string";
  if (why) throw new ValidationError(field, topic, why);
  return topic as string;
}

/** The topic of a run (`workflow:{id}`), checked; the error names the id. */
export function workflowTopic(id: unknown): string {
  const why = typeof id == "string" && id ? topicProblem("workflow:" + id) : "a workflow id must be a non-empty string";
  if (why) throw new ValidationError("workflow id", id, why);
  return "workflow:" + id;
}

/** Event names: 1 to 128 bytes, no control characters (as the server's `check_event`). */
export function checkEvent(event: unknown): string {
  // eslint-disable-next-line no-control-regex
  if (typeof event != "string" || !event || byteLength(event) > MAX_EVENT_LEN || /[\u0000-\u001f\u007f-\u009f]/.test(event)) {
    throw new ValidationError("event", event, `it must be 1 to ${MAX_EVENT_LEN} bytes with no control characters`);
  }
  return event;
}

/** The JSON text of a message, or a ValidationError when it is over `max` bytes. */
export function encode(msg: object, max: number): string {
  const text = JSON.stringify(msg);
  const n = byteLength(text);
  if (n > max) throw new ValidationError("message size", n, `the message is ${n} bytes; the server takes at most ${max}`);
  return text;
}
