"""Bounds through the real stack: bad job specs are 400 and oversized bodies 413, with JSON."""

from __future__ import annotations

import pytest
import requests

pytestmark = pytest.mark.integration

BASE = '{"name": "n", "command": ["true"]'


@pytest.fixture(scope="module")
def token(stack):
    return stack.create_user("bounder")


def post(stack, token, path, body: bytes | str):
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return requests.post(f"{stack.url}/services/lens/api/{path}", data=data, timeout=60,
                         headers={"Authorization": f"token {token}",
                                  "Content-Type": "application/json"})


@pytest.mark.parametrize("body,message", [
    (BASE + ', "memory": ' + "9" * 400 + "}", "memory: "),  # a 400-digit number
    (BASE + ', "memory": "' + "9" * 400 + '"}', "memory: cannot parse"),
    (BASE + ', "walltime": "' + "9" * 5000 + '"}', "walltime: cannot parse"),
    (BASE + ', "walltime": ' + "9" * 5000 + "}", "must be JSON"),  # past Python's int limit
    (BASE + ', "array": {"params": 5}}', "array.params: must be a list"),
    (BASE + ', "array": 10001}', "array.size: 10001 is out of range"),
    (BASE + ', "env": {"X": "\\ud800"}}', "not valid Unicode"),
    (BASE + ', "env": {"X": ' + "[" * 200_000 + "]" * 200_000 + "}}", "must be JSON"),
    (BASE + ', "env": {"X": "' + "x" * 30000 + '", "Y": "' + "x" * 30000 + '", "Z": "'
     + "x" * 30000 + '"}}', "more than 65536"),
    ('{"spec": [1]}', "spec must be a JSON object"),
])
@pytest.mark.parametrize("path", ["jobs", "jobs/estimate"])
def test_bad_specs_are_400_with_a_json_message(stack, token, path, body, message):
    r = post(stack, token, path, body)
    assert r.status_code == 400, r.text[:300]
    assert r.headers["Content-Type"].startswith("application/json")
    assert message in r.json()["message"]


def test_oversized_bodies_are_413_with_a_json_message(stack, token):
    body = (BASE + ', "env": {"X": "' + "x" * (2 * 2**20) + '"}}').encode()
    r = post(stack, token, "jobs", body)
    assert r.status_code == 413, r.text[:300]
    assert r.json() == {"status": 413, "message": "The request body is larger than 1048576 bytes."}
    assert post(stack, token, "jobs/estimate", b"{}" + b" " * (2**20)).status_code == 413
    ok = post(stack, token, "jobs/estimate", BASE + ', "walltime": "5m"}')
    assert ok.status_code == 200 and ok.json()["walltime_s"] == 300
