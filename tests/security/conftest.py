"""The security modules' shared stack (see live_stack.py)."""

from __future__ import annotations

import secrets

import pytest

from tests.security.live_stack import running_stack
from tests.support import moto as moto_support

# moto's secret key, in the stack's environment: test_leaks looks for it in responses
# and logs
AWS_SECRET = f"lens-moto-secret-{secrets.token_hex(12)}"


@pytest.fixture(scope="package")
def stack(moto_endpoint):
    aws = {**moto_support.aws_env(moto_endpoint), "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
    with running_stack(extra_env=aws, every_user=True) as hub:
        yield hub
