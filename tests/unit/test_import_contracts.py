"""Layer contracts, read from the source (every import statement, lazy ones too):

- the engines (atom, costs, archive, workshop) import nothing from Jupyter,
  tornado or the adapters (hub, service, server, kernel, gateway, cli, spawners);
- costs imports neither atom nor archive;
- package ``__init__``s import none of their submodules at import time;
- no import cycles among modules at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("jupyter_ext", "spawners")
ENGINES = ("atom", "costs", "archive", "workshop")
THIRD_PARTY_FORBIDDEN = ("jupyter_server", "tornado", "IPython", "ipywidgets", "jupyterhub", "ipykernel",
                         "traitlets.config.application", "kubespawner", "dask_gateway_server")
ADAPTERS = ("jupyter_ext.hub", "jupyter_ext.service", "jupyter_ext.server", "jupyter_ext.kernel",
            "jupyter_ext.gateway", "jupyter_ext.cli", "spawners")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts and "versions" in path.parts:
                continue
            found[module_name(path)] = path
    return found


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Absolute names imported by a module (``from a import b`` gives a and a.b)."""
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):  # imports only for type checkers never run
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_engines_import_no_jupyter_and_no_adapters():
    bad = []
    for name, path in modules().items():
        engine = next((e for e in ENGINES if within(name, [f"jupyter_ext.{e}"])), None)
        if not engine:
            continue
        for target in imports(path):
            if within(target, THIRD_PARTY_FORBIDDEN) or within(target, ADAPTERS):
                bad.append(f"{name} imports {target}")
            if engine == "costs" and within(target, ["jupyter_ext.atom", "jupyter_ext.archive"]):
                bad.append(f"{name} imports {target}")
    assert not bad, "\n".join(sorted(bad))


def test_package_inits_are_light():
    found = modules()
    bad = []
    for name, path in found.items():
        if path.name != "__init__.py":
            continue
        for target in imports(path, top_level_only=True):
            if target.startswith(name + ".") and target in found:
                bad.append(f"{name}/__init__ imports {target}")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycles():
    found = modules()
    graph = {}
    for name, path in found.items():
        edges = set()
        for target in imports(path, top_level_only=True):
            if target in found and target != name:
                edges.add(target)
        graph[name] = edges
    # Tarjan's strongly connected components
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_the_contract_sees_imports():
    """The checker itself: it finds a relative, a lazy and an aliased import."""
    found = imports(ROOT / "jupyter_ext" / "kernel" / "import_hook.py")
    assert "jupyter_ext.kernel.dask_client_fix" in found
