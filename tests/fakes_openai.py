"""A local fake of the OpenAI chat-completions API, for testing the real `langchain-openai` client.

Usage:

    with FakeOpenAIServer() as server:
        server.reply_tool_call("LLMIntent", {"intents": ["report"]})
        llm = ChatOpenAI(model="fake", base_url=server.base_url, api_key="test", max_retries=0)
        ...
        assert server.requests[0]["model"] == "fake"

Each POST to `/v1/chat/completions` takes the next scripted reply (a tool call, plain text, raw
arguments, an HTTP error, or any of these after a delay). With no reply left it answers 500.
It listens on 127.0.0.1 on a free port, in a daemon thread.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ScriptedReply:
    """One scripted answer: `body` sent with `status` after `delay_s` seconds."""

    status: int
    body: dict[str, Any]
    delay_s: float = 0.0


def _completion(model: str, message: dict[str, Any], finish_reason: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class FakeOpenAIServer:
    """Serve scripted chat completions on 127.0.0.1; record every request body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._replies: deque[ScriptedReply] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    body = {}
                reply = server._take(body)
                if reply.delay_s and server._stopping.wait(reply.delay_s):
                    return
                payload = json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up (its timeout); nothing to answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-openai", daemon=True)

    @property
    def base_url(self) -> str:
        """Return the URL to pass as `base_url` (ends in `/v1`)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _take(self, body: dict[str, Any]) -> ScriptedReply:
        with self._lock:
            self.requests.append(body)
            if self._replies:
                reply = self._replies.popleft()
            else:
                reply = ScriptedReply(500, {"error": {"message": "no scripted reply left", "type": "server_error"}})
        model = body.get("model", "fake")
        if reply.body.get("object") == "chat.completion":
            reply.body["model"] = model
        return reply

    def reply_tool_call(self, name: str, arguments: dict[str, Any] | str, *, delay_s: float = 0.0) -> None:
        """Queue an answer that calls tool `name` with `arguments` (a dict, or a raw string sent as is)."""
        raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_fake_1", "type": "function", "function": {"name": name, "arguments": raw}}],
        }
        self._queue(ScriptedReply(200, _completion("fake", message, "tool_calls"), delay_s))

    def reply_text(self, content: str, *, delay_s: float = 0.0) -> None:
        """Queue a plain-text answer (no tool call)."""
        message = {"role": "assistant", "content": content}
        self._queue(ScriptedReply(200, _completion("fake", message, "stop"), delay_s))

    def reply_error(self, status: int, message: str = "fake failure") -> None:
        """Queue an HTTP error with an OpenAI-style error body."""
        self._queue(ScriptedReply(status, {"error": {"message": message, "type": "server_error", "code": None}}))

    def _queue(self, reply: ScriptedReply) -> None:
        with self._lock:
            self._replies.append(reply)
