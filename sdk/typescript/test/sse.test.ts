// The SSE parser on its own: line endings, split chunks, comments, multi-line data.

import assert from "node:assert/strict";
import { test } from "node:test";

import { SseParser, type SseMessage } from "@tlao/sdk";

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

function parseInChunks(text: string, size: number): SseMessage[] {
  const parser = new SseParser();
  const bytes = encode(text);
  const messages: SseMessage[] = [];
  for (let i = 0; i < bytes.length; i += size) messages.push(...parser.push(bytes.subarray(i, i + size)));
  return messages;
}

const STREAM =
  ": keep-alive\n\n" +
  "id: 1\nevent: log\ndata: {\"text\":\"héllo ✓\"}\n\n" +
  "id: 2\r\nevent: status\r\ndata: a\r\ndata: b\r\n\r\n" +
  "id: 3\revent: end\rdata:no space\rretry: 10\r\r" +
  "data: unnamed\n\n";

const EXPECTED: SseMessage[] = [
  { id: "1", event: "log", data: '{"text":"héllo ✓"}' },
  { id: "2", event: "status", data: "a\nb" },
  { id: "3", event: "end", data: "no space" },
  { id: undefined, event: "message", data: "unnamed" },
];

test("parses messages whatever the line endings, skipping comments", () => {
  assert.deepEqual(parseInChunks(STREAM, STREAM.length * 4), EXPECTED);
});

test("chunks may split lines, CRLF pairs and UTF-8 characters anywhere", () => {
  for (const size of [1, 2, 3, 5, 7, 13]) assert.deepEqual(parseInChunks(STREAM, size), EXPECTED, `chunks of ${size}`);
});

test("a partial message is held until its blank line, and reset() forgets it", () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push(encode("id: 9\nevent: log\ndata: x\n")), []);
  parser.reset();
  assert.deepEqual(parser.push(encode("id: 10\ndata: y\n\n")), [{ id: "10", event: "message", data: "y" }]);
});

test("an empty chunk between the CR and the LF of a CRLF does not split the line ending in two", () => {
  const parser = new SseParser();
  const messages = [
    ...parser.push(encode("data: a\r")),
    ...parser.push(new Uint8Array(0)),
    ...parser.push(encode("\ndata: b\r\n\r\n")),
  ];
  assert.deepEqual(messages, [{ id: undefined, event: "message", data: "a\nb" }]);
});

test("a message without data lines is not dispatched; an empty data line is", () => {
  const parser = new SseParser();
  assert.deepEqual(parser.push(encode("event: end\n\nid: 4\nevent: status\n\n")), []);
  assert.deepEqual(parser.push(encode("event: log\ndata:\n\n")), [{ id: undefined, event: "log", data: "" }]);
});
