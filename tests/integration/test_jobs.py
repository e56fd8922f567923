"""atom jobs through the real stack: %atom -> extension -> service -> local backend."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from IPython.core.error import UsageError

from tests.integration.conftest import as_kernel_of

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def jobs_user(stack):
    name = "jobber"
    token = stack.create_user(name)
    stack.spawn(name, "lab")  # creates the unix account jobs run as
    yield name, token
    stack.stop_server(name)


@pytest.fixture
def kernel_env(jobs_user, stack, monkeypatch):
    name, token = jobs_user
    as_kernel_of(monkeypatch, stack, name, token)
    return name


def api(stack, method, path, token, **kw):
    return requests.request(method, f"{stack.url}/services/lens/api/{path}",
                            headers={"Authorization": f"token {token}"}, timeout=30, **kw)


def test_submit_wait_logs_and_cost_through_the_magic(ip, kernel_env, capsys):
    job = ip.run_line_magic("atom", "submit --name hello --walltime 5m -- python3 -c 'print(6*7)'")
    assert job.id.startswith("j-")
    assert job.wait(timeout=120) == "SUCCEEDED"
    assert job.logs().strip().endswith("42")
    record = job.refresh()
    assert record["cost_micro"] is not None and record["runtime_s"] > 0
    import pwd

    assert pwd.getpwnam(f"jupyter-{kernel_env}")  # ran as the user's account


def test_cell_script_array_and_status(ip, kernel_env):
    job = ip.run_cell_magic("atom", "submit --name ens --array 3 --walltime 5m", 'echo "member $LENS_ARRAY_INDEX"\n')
    assert job.wait(timeout=180) == "SUCCEEDED"
    assert job.refresh()["counts"].get("SUCCEEDED") == 3


def test_cancel_and_failure_are_reported(ip, kernel_env):
    slow = ip.run_line_magic("atom", "submit --name slow --walltime 10m -- sleep 300")
    slow.cancel()
    assert slow.wait(timeout=60) == "CANCELLED"
    bad = ip.run_line_magic("atom", "submit --name bad --walltime 5m -- sh -c 'echo boom; exit 3'")
    assert bad.wait(timeout=120) == "FAILED"
    failure = bad.refresh()["failure"]
    assert failure["exit_code"] == 3 and "boom" in failure["log_tail"]


def test_bad_input_is_a_usage_error_and_nothing_runs(ip, kernel_env, tmp_path):
    canary = tmp_path / "canary"
    with pytest.raises(UsageError, match="name"):
        ip.run_line_magic("atom", f"submit --name 'x; touch {canary}' -- true")
    with pytest.raises(UsageError, match="arch"):
        ip.run_line_magic("atom", "submit --arch vax -- true")
    with pytest.raises(UsageError):
        ip.run_line_magic("atom", "frobnicate")
    with pytest.raises(UsageError):
        ip.run_line_magic("atom", "submit --vcpus lots -- true")
    # shell metacharacters in a command are run literally, as argv
    job = ip.run_line_magic("atom", f"submit --name lit --walltime 5m -- echo '$(touch {canary})' ';' '`id`'")
    assert job.wait(timeout=120) == "SUCCEEDED"
    assert f"$(touch {canary}) ; `id`" in job.logs()
    assert not canary.exists()


def test_other_users_get_404_and_over_budget_is_refused(stack, jobs_user):
    name, token = jobs_user
    other = stack.create_user("jobs-other")
    r = api(stack, "POST", "jobs", token, json={"spec": {"name": "mine", "command": ["true"], "walltime": "5m"}})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    for method, path in (("GET", f"jobs/{job_id}"), ("DELETE", f"jobs/{job_id}"), ("GET", f"jobs/{job_id}/logs")):
        assert api(stack, method, path, other).status_code == 404, path
    assert job_id not in [j["id"] for j in api(stack, "GET", "jobs", other).json()["jobs"]]
    assert api(stack, "GET", f"jobs?user={name}", other).status_code == 403
    assert api(stack, "GET", "jobs", "").status_code in (401, 403)
    env = {**stack.env, "LENS_DB_URL": f"sqlite:///{stack.state / 'lens.sqlite'}"}
    subprocess.run([sys.executable, "-m", "jupyter_ext.cli.main", "budgets", "set", "user:jobs-other", "0.000001"],
                   check=True, capture_output=True, env=env)
    r = api(stack, "POST", "jobs", other, json={"spec": {"name": "big", "command": ["true"], "walltime": "10:00:00",
                                                         "vcpus": 64}})
    assert r.status_code == 403
    assert "budget" in r.json()["message"].lower()
