"""Hostile names, commands, env values and scripts: each is rejected with a clear message
or run literally, and nothing unintended runs (a canary file is never created)."""

from __future__ import annotations

import os

import pytest

from jupyter_ext.atom.backends.local import LocalBackend
from jupyter_ext.atom.backends.slurm import SlurmBackend
from jupyter_ext.atom.errors import SpecError
from jupyter_ext.atom.manager import JobManager
from jupyter_ext.atom.script import render_script
from jupyter_ext.atom.spec import parse_spec
from tests.atom.helpers import settle
from tests.atom.test_slurm import cancel_leftovers
from tests.conftest import require


@pytest.fixture
def canary(shared_dir):
    d = os.path.join(shared_dir, "canary")
    os.mkdir(d)
    os.chmod(d, 0o777)  # anyone (any job user) could create it, if anything ran
    path = os.path.join(d, "PWNED")
    yield path
    assert not os.path.exists(path), "an injected command ran"


def hostile(canary: str) -> list[str]:
    return [
        f"; touch {canary}", f"$(touch {canary})", f"`touch {canary}`",
        f"a\ntouch {canary}\n", f"#SBATCH --output={canary}", "'\"quotes'\"", "\\", "*",
        f"' ; touch {canary} ; '", "x" * 8000,
    ]


@pytest.mark.parametrize("name", [
    "a;touch x", "$(touch x)", "`id`", "a\nb", "#SBATCH --uid=0", "a'b", "a\"b", "x" * 65,
    "-rf", "", " lead",
])
def test_hostile_names_are_rejected(name):
    with pytest.raises(SpecError, match="^name: ") as err:
        parse_spec({"name": name, "command": ["true"]})
    assert "allowed" in str(err.value)


@pytest.mark.parametrize("data,field", [
    ({"env": {"A;touch x": "1"}}, "env.A;touch x"),
    ({"env": {"PATH": "/evil"}}, "env.PATH"),
    ({"env": {"LD_PRELOAD": "/evil.so"}}, "env.LD_PRELOAD"),
    ({"env": {"SLURM_JOB_UID": "0"}}, "env.SLURM_JOB_UID"),
    ({"env": {"V": "x" * 40000}}, "env.V"),
    ({"command": ["echo", "x" * 9000]}, "command"),
    ({"command": "rm -rf / ; echo"}, "command"),
    ({"command": ["echo", "a\x00b"]}, "command"),
    ({"tags": {"k": "a\nb"}}, "tags.k"),
    ({"tags": {"lens:user": "root"}}, "tags.lens:user"),
    ({"walltime": "1:00; rm -rf /"}, "walltime"),
    ({"depends_on": ["afterok:j-1;touch"]}, "depends_on.id"),
    ({"array": {"size": 2, "params": [{"A B": "1"}, {}]}}, "array.params[0].A B"),
    ({"outputs": "s3://bucket/\nx"}, "outputs"),
    ({"arch": "x86_64; rm"}, "arch"),
    ({"spot": "maybe"}, "spot"),
    ({"script": "echo\x00"}, "script"),
])
def test_hostile_fields_are_rejected_naming_the_field(data, field):
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "ok", "command": ["true"], **data})
    assert str(err.value).startswith(f"{field}: ")


def test_rendered_script_quotes_everything(canary):
    args = hostile(canary)
    body = render_script(argv=["printf", "%s\\n", *args], env={"V": args[3]},
                         params=[{"P": args[1]}], index_var="SLURM_ARRAY_TASK_ID")
    lines = body.splitlines()
    assert lines[0] == "#!/bin/bash" and lines[1].startswith(": lens-atom-job")
    # nothing but our first two lines may start with '#' before the first command ...
    assert not any(line.startswith("#SBATCH") for line in lines[:2])
    # ... and running it does exactly what the argv says
    import subprocess
    env = {"PATH": "/usr/bin:/bin", "SLURM_ARRAY_TASK_ID": "0"}
    with open(os.path.join(os.path.dirname(canary), "s.sh"), "w") as f:
        f.write(body)
    out = subprocess.run(["/bin/bash", f.name], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out == "".join(a + "\n" for a in args)


async def _literal_run(manager, canary):
    args = hostile(canary)
    env = {"V1": args[1], "V2": args[2], "V3": args[3], "V4": args[4], "V5": "y" * 30000}
    rec = await manager.submit("atomalice", [], {
        "name": "literal", "walltime": 120, "memory": "64Mi",
        "command": ["printf", "%s\\n", *args],
    })
    rec_env = await manager.submit("atomalice", [], {
        "name": "envs", "walltime": 120, "memory": "64Mi", "env": env,
        "command": ["sh", "-c", 'printf "%s\\n" "$V1" "$V2" "$V3" "$V4" "$V5"'],
    })
    sbatch_lines = "\n".join(f"#SBATCH {o}" for o in (
        "--uid=0", f"--output={canary}", "--wrap='touch x'"))
    rec_script = await manager.submit("atomalice", [], {
        "name": "script", "walltime": 120, "memory": "64Mi",
        "script": f"#!/bin/bash\n{sbatch_lines}\nid -un\necho \"$0\"\n",
    })
    done = await settle(manager, "atomalice", [rec["id"], rec_env["id"], rec_script["id"]],
                        limit=90, interval=0.25)
    assert [d["state"] for d in done] == ["SUCCEEDED"] * 3, done
    assert await manager.logs("atomalice", rec["id"]) == "".join(a + "\n" for a in args)
    assert await manager.logs("atomalice", rec_env["id"]) == "".join(
        env[k] + "\n" for k in ("V1", "V2", "V3", "V4", "V5"))
    script_out = (await manager.logs("atomalice", rec_script["id"])).splitlines()
    assert script_out[0] == "jupyter-atomalice"  # the #SBATCH --uid=0 line had no effect


async def test_local_runs_hostile_text_literally(shared_dir, engine, ledger, catalog,
                                                 unix_users, canary):
    manager = JobManager(engine, {"local": LocalBackend(state_dir=shared_dir + "/local")},
                         ledger, catalog=catalog)
    if os.geteuid() != 0:
        pytest.skip("the script check expects the jupyter-atomalice account (root)")
    await _literal_run(manager, canary)


@pytest.mark.slurm
async def test_slurm_runs_hostile_text_literally(slurm_conf, shared_dir, engine, ledger,
                                                 catalog, unix_users, canary):
    require(os.geteuid() == 0, "Slurm jobs run as the users through --uid/--gid (root)")
    backend = SlurmBackend(state_dir=shared_dir + "/slurm", slurm_conf=slurm_conf)
    manager = JobManager(engine, {"slurm": backend}, ledger, catalog=catalog)
    try:
        await _literal_run(manager, canary)
    finally:
        cancel_leftovers(manager, slurm_conf)


@pytest.mark.parametrize("data,field", [
    ({"name": "ok\n"}, "name"), ({"env": {"A\n": "1"}}, "env.A\n"[:6]),
    ({"tags": {"k": "v\n"}}, "tags.k"), ({"depends_on": ["j-0123456789ab\n"]}, "depends_on.id"),
    ({"image": "alpine\n"}, "image"),
])
def test_trailing_newlines_are_rejected(data, field):
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "ok", "command": ["true"], **data})
    assert err.value.field.startswith(field.strip())
