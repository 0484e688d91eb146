/**
 * An incremental parser of `text/event-stream` bodies (the WHATWG server-sent events
 * format): bytes in, messages out.
 *
 * @module
 */

/** One server-sent event message. */
export interface SseMessage {
  /** The `id:` field, when the message had one. */
  id: string | undefined;
  /** The `event:` field; `message` when absent. */
  event: string;
  /** The `data:` lines, joined with newlines. */
  data: string;
}

/**
 * Parses a `text/event-stream` body chunk by chunk. Lines may end in `\n`, `\r\n` or
 * `\r`, and chunks (even empty ones) may split lines, `\r\n` pairs and UTF-8 characters
 * anywhere. Comment lines (keep-alives) are skipped; a message is complete at the blank
 * line that ends it, and, as the specification says, one without any `data:` line is
 * dropped rather than dispatched.
 */
export class SseParser {
  #decoder = new TextDecoder("utf-8");
  #buffer = "";
  #id: string | undefined;
  #event = "";
  #data: string[] = [];
  #pendingCr = false;

  /** Feeds a chunk of the body; returns the messages it completed, in order. */
  push(chunk: Uint8Array): SseMessage[] {
    return this.#consume(this.#decoder.decode(chunk, { stream: true }));
  }

  /** Forgets a partial message (after a dropped connection). */
  reset(): void {
    this.#decoder = new TextDecoder("utf-8");
    this.#buffer = "";
    this.#id = undefined;
    this.#event = "";
    this.#data = [];
    this.#pendingCr = false;
  }

  #consume(text: string): SseMessage[] {
    const messages: SseMessage[] = [];
    if (text === "") return messages; // nothing new: a "\r" seen last may still pair with a "\n"
    let input = text;
    if (this.#pendingCr && input.startsWith("\n")) input = input.slice(1);
    this.#pendingCr = false;
    this.#buffer += input;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.#buffer);
      if (!match) break;
      // A trailing "\r" may be the first half of "\r\n": skip the "\n" if it comes next.
      if (match[0] === "\r" && match.index === this.#buffer.length - 1) this.#pendingCr = true;
      const line = this.#buffer.slice(0, match.index);
      this.#buffer = this.#buffer.slice(match.index + match[0].length);
      const message = this.#line(line);
      if (message) messages.push(message);
    }
    return messages;
  }

  #line(line: string): SseMessage | undefined {
    if (line === "") {
      const message: SseMessage | undefined =
        this.#data.length > 0 ? { id: this.#id, event: this.#event || "message", data: this.#data.join("\n") } : undefined;
      this.#id = undefined;
      this.#event = "";
      this.#data = [];
      return message;
    }
    if (line.startsWith(":")) return undefined;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      case "event":
        this.#event = value;
        break;
      case "data":
        this.#data.push(value);
        break;
      default:
        // `retry:` and unknown fields do not change the message.
        break;
    }
    return undefined;
  }
}
