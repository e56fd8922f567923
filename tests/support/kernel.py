"""Run code in a real kernel of a user server, through the server's REST and
websocket API (the path a browser's notebook takes, without the browser)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


@dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    data: list[dict] = field(default_factory=list)  # display_data / execute_result bundles
    error: dict | None = None

    @property
    def text(self) -> str:
        return self.stdout + "".join(d.get("text/plain", "") for d in self.data)


class RemoteKernel:
    """One kernel in NAME's server; `run(code)` executes a cell and collects its output."""

    def __init__(self, base_url: str, user: str, token: str):
        self.server = f"{base_url}/user/{user}"
        self.headers = {"Authorization": f"token {token}"}
        self.token = token
        self.kernel_id = ""

    def __enter__(self) -> RemoteKernel:
        r = requests.post(f"{self.server}/api/kernels", json={"name": "python3"}, headers=self.headers, timeout=60)
        r.raise_for_status()
        self.kernel_id = r.json()["id"]
        return self

    def __exit__(self, *exc) -> None:
        requests.delete(f"{self.server}/api/kernels/{self.kernel_id}", headers=self.headers, timeout=30)

    def run(self, code: str, timeout: float = 300) -> CellResult:
        return asyncio.run(asyncio.wait_for(self._run(code), timeout))

    async def _run(self, code: str) -> CellResult:
        url = self.server.replace("http", "ws", 1) + f"/api/kernels/{self.kernel_id}/channels"
        conn = await websocket_connect(HTTPRequest(url, headers=self.headers))
        msg_id = uuid.uuid4().hex
        conn.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        result = CellResult()
        try:
            while True:
                raw = await conn.read_message()
                if raw is None:
                    raise RuntimeError("kernel websocket closed")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "stream":
                    if content["name"] == "stdout":
                        result.stdout += content["text"]
                    else:
                        result.stderr += content["text"]
                elif kind in ("display_data", "execute_result"):
                    result.data.append(content["data"])
                elif kind == "error":
                    result.error = content
                elif kind == "status" and content["execution_state"] == "idle":
                    return result
        finally:
            conn.close()
