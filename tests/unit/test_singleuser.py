"""lens-singleuser's start-time fixes (jupyter_ext/server/singleuser.py), and the one
the hub's launcher shares (jupyter_ext/hub/run_jupyterhub.py), each in a fresh
interpreter, as a start runs them."""

from __future__ import annotations

import subprocess
import sys

from jupyter_ext.server.singleuser import available, registry_from_environment


def run(code: str, **env) -> str:
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, **env}, timeout=120).stdout.strip()


def test_jupyterlab_import_runs_no_yarn(tmp_path):
    # A node that records being run: importing labapp (what a server start does) must not.
    marker = tmp_path / "node-ran"
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "node").write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    (fake / "node").chmod(0o755)
    path = f"{fake}:/usr/bin:/bin"
    out = run("from jupyter_ext.server.singleuser import skip_yarn_config; print(skip_yarn_config()); "
              "import jupyterlab.labapp, jupyterlab.commands as c; "
              "print(c.AppOptions().registry)", PATH=path, YARN_REGISTRY="https://npm.example.org")
    assert out.splitlines() == ["True", "https://npm.example.org"]
    assert not marker.exists()
    # upstream, unpatched, does run it: the fix is what keeps it out
    run("import jupyterlab.labapp", PATH=path)
    assert marker.exists()


def test_registry_default_is_yarns():
    assert registry_from_environment({}) == "https://registry.yarnpkg.com"
    assert registry_from_environment({"npm_config_registry": "https://r.example"}) == "https://r.example"


def test_proxied_apps_need_their_program(tmp_path):
    assert not available("rstudio", path=str(tmp_path))
    assert available("some-other-entry", path=str(tmp_path))  # unknown entries are kept
    (tmp_path / "rserver").write_text("#!/bin/sh\n")
    (tmp_path / "rserver").chmod(0o755)
    assert available("rstudio", path=str(tmp_path))


def test_iri_checks_load_their_grammar_on_first_use():
    out = run(
        "import sys; from jupyter_ext.server.singleuser import defer_rfc3987_syntax; "
        "print(defer_rfc3987_syntax()); "
        "import jsonschema, jupyter_events; print('lark' in sys.modules); "
        "check = jsonschema.Draft7Validator.FORMAT_CHECKER; "
        "print(check.conforms('https://example.org/a b', 'iri'), check.conforms('https://example.org/ä', 'iri')); "
        "print('lark' in sys.modules)")
    # deferred at start; on the first IRI check the real checker loads and answers as upstream's
    assert out.splitlines() == ["True", "False", "False True", "True"]
    upstream = run("import jsonschema; check = jsonschema.Draft7Validator.FORMAT_CHECKER; "
                   "print(check.conforms('https://example.org/a b', 'iri'), "
                   "check.conforms('https://example.org/ä', 'iri'))")
    assert upstream == "False True"


def test_the_hub_starts_with_the_iri_grammar_deferred():
    """`lens hub run` starts JupyterHub through jupyter_ext.hub.run_jupyterhub: its app
    imports jsonschema's checkers without compiling the IRI grammar; upstream's does."""
    out = run("import sys, jupyter_ext.hub.run_jupyterhub as hub; sys.argv = ['jupyterhub', '--version']\n"
              "try:\n    hub.main()\nexcept SystemExit:\n    pass\n"
              "print('jupyterhub.app' in sys.modules, 'lark' in sys.modules)")
    assert out.splitlines()[-1] == "True False"
    assert run("import sys, jupyterhub.app; print('lark' in sys.modules)") == "True"
