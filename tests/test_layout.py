"""The architecture stays visible: small modules, one-way imports, no private crossings."""

from __future__ import annotations

import ast

from conftest import ROOT

SRC = ROOT / "src" / "wcdfa"
MODULES = sorted(SRC.rglob("*.py"))


def _name(path):
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Every wcdfa module ``path`` imports, at the top or inside functions, and names."""
    tree = ast.parse(path.read_text())
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("wcdfa"):
                    yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            if module.startswith("wcdfa"):
                yield module, [alias.name for alias in node.names]


def test_no_module_over_500_lines():
    sizes = {_name(p): len(p.read_text().splitlines()) for p in MODULES}
    assert {m: n for m, n in sizes.items() if n > 500} == {}


def test_no_import_cycle_counting_imports_inside_functions():
    known = {_name(p) for p in MODULES}
    graph = {}
    for path in MODULES:
        targets = set()
        for module, names in _imports(path):
            targets |= {f"{module}.{n}" for n in names if f"{module}.{n}" in known}
            if module in known and not any(f"{module}.{n}" in known for n in names):
                targets.add(module)
        graph[_name(path)] = targets - {_name(path)}
    # the package's __init__ re-exports: edges into it are not dependencies of note
    graph = {m: {t for t in ts if t != "wcdfa" or m == "wcdfa"} for m, ts in graph.items()}
    seen, stack, cycles = set(), [], []

    def visit(node):
        if node in stack:
            cycles.append([*stack[stack.index(node) :], node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        stack.pop()

    for module in sorted(graph):
        visit(module)
    assert cycles == []


def test_no_private_name_is_imported_from_another_module():
    crossings = [
        f"{_name(path)} imports {module}.{name}"
        for path in MODULES
        for module, names in _imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert crossings == []
