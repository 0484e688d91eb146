#!/usr/bin/env python3
"""The project's fake model endpoints, for running real agent CLIs offline.

One loopback HTTP server answers three APIs, each streaming:

- Anthropic Messages (POST /v1/messages, SSE), used by Claude Code;
- Gemini (POST /v1beta/models/{model}:streamGenerateContent?alt=sse), used by Gemini CLI;
- OpenAI Responses (POST /v1/responses or /responses, SSE), used by Codex.

A turn that offers the agent's file-writing tool and has no tool result yet is answered
with a call of that tool writing FILE (Anthropic `tool_use` `Write`, Gemini
`functionCall` `write_file`, Responses `custom_tool_call` `apply_patch`); a turn that
carries a tool result is answered with a final text; anything else (titles, token
counts, classifiers, ...) with a short generic answer.

With --fail STATUS every model request is answered with that HTTP status and an error
body in the API's shape (401: a bad key, 400: a bad request).

Prints `listening on PORT` on stdout once ready, then logs each request on stderr
(with FAKE_MODELS_DUMP=FILE, also appends each request's path and JSON body to FILE:
how the agents' requests were studied).
Stops on SIGTERM, or when its standard input closes (--stdin-lifeline).
"""

import argparse
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FILE = "agent-note.txt"
CONTENT = "written by the agent at the fake model's request\n"
FINAL = "I wrote agent-note.txt as asked."


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fail = None
    file_name = FILE

    def log_message(self, fmt, *args):  # requests are logged by do_*
        pass

    # -- plumbing -------------------------------------------------------------
    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding") == "gzip":
            import gzip

            raw = gzip.decompress(raw)
        elif self.headers.get("Content-Encoding") == "zstd":
            log("zstd request body not understood")
            return {}
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def send_json(self, status, value):
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def sse(self, data, event=None):
        chunk = ""
        if event:
            chunk += f"event: {event}\n"
        chunk += f"data: {json.dumps(data)}\n\n"
        self.wfile.write(chunk.encode())
        self.wfile.flush()

    def do_GET(self):
        log(f"GET {self.path}")
        path = self.path.split("?")[0]
        if path.endswith("/models") or "/models" in path:
            self.send_json(200, {"data": [], "models": [], "object": "list"})
        else:
            self.send_json(404, {"error": {"message": f"no {path} here"}})

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        body = self.body()
        path = self.path.split("?")[0]
        log(f"POST {self.path} stream={body.get('stream')}")
        if os.environ.get("FAKE_MODELS_DUMP"):
            with open(os.environ["FAKE_MODELS_DUMP"], "a") as dump:
                dump.write(json.dumps({"path": self.path, "body": body}) + "\n")
        if path.endswith("/messages/count_tokens"):
            return self.send_json(200, {"input_tokens": 42})
        if path.endswith("/messages"):
            return self.anthropic(body)
        if ":streamGenerateContent" in path or ":generateContent" in path:
            return self.gemini(body, stream=":streamGenerateContent" in path)
        if ":countTokens" in path:
            return self.send_json(200, {"totalTokens": 42})
        if path.endswith("/responses"):
            return self.openai_responses(body)
        return self.send_json(404, {"error": {"message": f"no {path} here"}})

    # -- failures -------------------------------------------------------------
    def failed(self, api):
        status = self.fail
        if status is None:
            return False
        message = {
            401: "invalid x-api-key (the fake model refuses every key)",
            400: "the fake model refuses this request",
        }.get(status, "the fake model fails")
        if api == "anthropic":
            kind = "authentication_error" if status == 401 else "invalid_request_error"
            value = {"type": "error", "error": {"type": kind, "message": message}}
        elif api == "gemini":
            value = {
                "error": {
                    "code": status,
                    "message": ("API key not valid. Please pass a valid API key. " if status == 401 else "")
                    + message,
                    "status": "UNAUTHENTICATED" if status == 401 else "INVALID_ARGUMENT",
                }
            }
        else:
            value = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "code": "invalid_api_key" if status == 401 else "bad_request",
                }
            }
        log(f"  -> {status}")
        self.send_json(status, value)
        return True

    # -- Anthropic Messages ---------------------------------------------------
    def anthropic(self, body):
        if self.failed("anthropic"):
            return
        model = body.get("model", "claude-sonnet-4-5")
        tools = {t.get("name") for t in body.get("tools") or []}
        messages = body.get("messages") or []
        last = messages[-1] if messages else {}
        content = last.get("content") if isinstance(last, dict) else None
        has_result = isinstance(content, list) and any(
            isinstance(b, dict) and b.get("type") == "tool_result" for b in content
        )
        system = json.dumps(body)
        if has_result:
            blocks = [{"type": "text", "text": FINAL}]
            log("  -> final text")
        elif "Write" in tools:
            match = re.search(r"Primary working directory: ([^\\\n\"]+)", system) or re.search(
                r"Working directory: ([^\\\n\"]+)", system
            )
            cwd = match.group(1).strip() if match else os.getcwd()
            if not match:
                at = system.lower().find("directory")
                log(f"  no working directory in the system prompt: {system[max(0, at - 200):at + 200]}")
            path = os.path.join(cwd, self.file_name)
            blocks = [
                {"type": "text", "text": "I will write the file."},
                {
                    "type": "tool_use",
                    "id": "toolu_fake_0001",
                    "name": "Write",
                    "input": {"file_path": path, "content": CONTENT},
                },
            ]
            log(f"  -> tool_use Write {path}")
        else:
            blocks = [{"type": "text", "text": "Fake title"}]
            log("  -> generic text")
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        usage = {
            "input_tokens": 120,
            "output_tokens": 30,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 10,
        }
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**usage, "output_tokens": 1},
        }
        if not body.get("stream"):
            message.update(content=blocks, stop_reason=stop, usage=usage)
            return self.send_json(200, message)
        self.start_sse()
        self.sse({"type": "message_start", "message": message}, "message_start")
        for i, block in enumerate(blocks):
            if block["type"] == "text":
                self.sse(
                    {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}},
                    "content_block_start",
                )
                self.sse(
                    {"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": block["text"]}},
                    "content_block_delta",
                )
            else:
                self.sse(
                    {
                        "type": "content_block_start",
                        "index": i,
                        "content_block": {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}},
                    },
                    "content_block_start",
                )
                self.sse(
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": json.dumps(block["input"])},
                    },
                    "content_block_delta",
                )
            self.sse({"type": "content_block_stop", "index": i}, "content_block_stop")
        self.sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
            "message_delta",
        )
        self.sse({"type": "message_stop"}, "message_stop")

    # -- Gemini ---------------------------------------------------------------
    def gemini(self, body, stream):
        if self.failed("gemini"):
            return
        names = set()
        for tool in body.get("tools") or []:
            for decl in tool.get("functionDeclarations") or []:
                names.add(decl.get("name"))
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        has_result = any("functionResponse" in p for p in last.get("parts") or [])
        if has_result:
            parts = [{"text": FINAL}]
            log("  -> final text")
        elif "write_file" in names:
            parts = [{"functionCall": {"name": "write_file", "args": {"file_path": self.file_name, "content": CONTENT}}}]
            log("  -> functionCall write_file")
        else:
            # Side calls (routing, next speaker, ...) often ask for JSON.
            config = body.get("generationConfig") or {}
            if config.get("responseMimeType") == "application/json":
                parts = [{"text": json.dumps({"reasoning": "fake", "next_speaker": "user", "model_choice": "flash", "complexity_reasoning": "fake", "complexity_score": 10})}]
            else:
                parts = [{"text": "Fake answer"}]
            log("  -> generic")
        response = {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 150, "candidatesTokenCount": 25, "totalTokenCount": 175, "cachedContentTokenCount": 0},
            "modelVersion": "gemini-2.5-pro",
        }
        if not stream:
            return self.send_json(200, response)
        self.start_sse()
        self.wfile.write(f"data: {json.dumps(response)}\r\n\r\n".encode())
        self.wfile.flush()

    # -- OpenAI Responses -----------------------------------------------------
    def openai_responses(self, body):
        if self.failed("responses"):
            return
        items = body.get("input") or []
        if isinstance(items, str):
            items = []
        tools = set()
        for tool in body.get("tools") or []:
            tools.add(tool.get("name") or tool.get("type"))
        last_user = max((i for i, item in enumerate(items) if item.get("role") == "user"), default=-1)
        has_result = any(
            isinstance(item, dict) and item.get("type", "").endswith("_call_output") for item in items[last_user + 1 :]
        )
        model = body.get("model", "gpt-5.5")
        if has_result:
            output = [
                {
                    "type": "message",
                    "id": "msg_fake_2",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": FINAL, "annotations": []}],
                }
            ]
            log("  -> final text")
        elif "apply_patch" in tools:
            patch = "*** Begin Patch\n*** Add File: " + self.file_name + "\n" + "".join(
                "+" + line + "\n" for line in CONTENT.splitlines()
            ) + "*** End Patch\n"
            output = [
                {
                    "type": "custom_tool_call",
                    "id": "ctc_fake_1",
                    "call_id": "call_fake_1",
                    "name": "apply_patch",
                    "input": patch,
                    "status": "completed",
                }
            ]
            log("  -> custom_tool_call apply_patch")
        else:
            output = [
                {
                    "type": "message",
                    "id": "msg_fake_1",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": "Fake answer", "annotations": []}],
                }
            ]
            log(f"  -> generic (tools: {sorted(t for t in tools if t)})")
        usage = {
            "input_tokens": 200,
            "input_tokens_details": {"cached_tokens": 50},
            "output_tokens": 40,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 240,
        }
        response = {"id": "resp_fake", "object": "response", "status": "in_progress", "model": model, "output": []}
        if not body.get("stream"):
            return self.send_json(200, {**response, "status": "completed", "output": output, "usage": usage})
        self.start_sse()
        seq = 0

        def send(event):
            nonlocal seq
            event["sequence_number"] = seq
            seq += 1
            self.sse(event, event["type"])

        send({"type": "response.created", "response": response})
        for i, item in enumerate(output):
            send({"type": "response.output_item.added", "output_index": i, "item": {**item, "status": "in_progress"}})
            if item["type"] == "message":
                text = item["content"][0]["text"]
                send(
                    {"type": "response.output_text.delta", "item_id": item["id"], "output_index": i, "content_index": 0, "delta": text}
                )
            send({"type": "response.output_item.done", "output_index": i, "item": item})
        send({"type": "response.completed", "response": {**response, "status": "completed", "output": output, "usage": usage}})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fail", type=int, default=None)
    parser.add_argument("--file", default=FILE)
    parser.add_argument("--stdin-lifeline", action="store_true")
    args = parser.parse_args()
    Handler.fail = args.fail
    Handler.file_name = args.file
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)
    if args.stdin_lifeline:

        def watch():
            sys.stdin.read()
            os._exit(0)

        threading.Thread(target=watch, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
