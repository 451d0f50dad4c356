"""DESIGN.md: nothing under fluxnb/runtime imports the notebook layer."""

import ast
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[1] / "fluxnb" / "runtime"
FORBIDDEN = {"IPython", "ipywidgets", "plotly", "ipykernel"}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.level > 2 and node.module:
            roots.add("fluxnb." + node.module)  # reaches above runtime/
    return roots


def test_runtime_never_imports_the_notebook_layer():
    offenders = {str(p.relative_to(RUNTIME)): imported_roots(p) & FORBIDDEN
                 for p in RUNTIME.rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}


def absolute_imports(path: Path) -> set[str]:
    """Every module a file imports, resolved to its absolute dotted name."""
    pkg = ".".join(path.relative_to(RUNTIME.parent.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = pkg.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            else:
                names.add(node.module)
    return names


def test_runtime_does_not_import_the_layers_above_it():
    above = ("fluxnb.magics", "fluxnb.widgets", "fluxnb.cli", "fluxnb.kvs", "fluxnb.job")
    bad = {str(p.relative_to(RUNTIME)): sorted(n for n in absolute_imports(p) if n.startswith(above))
           for p in RUNTIME.rglob("*.py")}
    assert {k: v for k, v in bad.items() if v} == {}
