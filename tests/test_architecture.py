"""The import structure the code has is the one docs/architecture.md states: every ``import`` of every module
(those inside functions too) goes to its own layer or one to its left in the documented table, no two modules
import each other through any chain, and models and methods are imported, not loaded by dotted strings. Also:
argparse only in the CLI and the commands, no module imports another's private names, and the command modules
hold no function over 80 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "skelact"
#: the modules that may look code up by name: foreign-format readers, pose estimators and the ONNX packages,
#: optional heavy dependencies loaded only when used
LAZY_LOADERS = {"skelact.data.sources", "skelact.pose.base", "skelact.pose.extract", "skelact.inference.onnx_export"}
#: the longest function the command modules may hold (issue 20: split long commands into named steps)
MAX_COMMAND_FUNCTION_LINES = 80


def documented_layers() -> list[str]:
    """The packages of the layer table of docs/architecture.md, left to right."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `skelact\.(\w+)` \|", section, flags=re.M)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


def imports(tree: ast.Module) -> list[tuple[str, int]]:
    """``(imported skelact module or name, line)`` for every import statement anywhere in ``tree``."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "skelact"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "skelact":
            out += [(f"{node.module}.{a.name}", node.lineno) for a in node.names] or [(node.module, node.lineno)]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            out.append((f"<relative import>", node.lineno))
    return out


def layer_of(module: str) -> str | None:
    """``skelact.data.store`` -> ``data``; the root package (the version) has no layer; ``__main__`` is the CLI's."""
    parts = module.split(".")
    if len(parts) == 1:
        return None
    return "cli" if parts[1] == "__main__" else parts[1]


def target_module(name: str, known: set[str]) -> str:
    """The module an imported name lives in (``skelact.data.batch.model_inputs`` -> ``skelact.data.batch``)."""
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def test_the_layer_table_is_read():
    layers = documented_layers()
    assert layers[:2] == ["atomic", "errors"] and layers[-1] == "cli" and len(layers) == len(set(layers)) >= 10


def test_every_import_follows_the_documented_layer_order():
    order = {name: i for i, name in enumerate(documented_layers())}
    trees = modules()
    known = set(trees)
    against = []
    for module, tree in trees.items():
        own = layer_of(module)
        if own is None:
            assert not imports(tree), "the root package holds the version only"
            continue
        assert own in order, f"{module}: package {own!r} is not in the layer table of docs/architecture.md"
        for name, line in imports(tree):
            assert name != "<relative import>", f"{module}:{line}: relative import"
            target = layer_of(target_module(name, known))
            if target is not None and order[target] > order[own]:
                against.append(f"{module}:{line} imports {name} ({target} is right of {own})")
    assert not against, "\n".join(against)


def test_no_import_circles():
    trees = modules()
    known = set(trees)
    edges = {m: {target_module(n, known) for n, _ in imports(t)} & known - {m} for m, t in trees.items()}
    # Tarjan's strongly connected components, iteratively
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    circles.append(sorted(component))
    assert not circles, circles


def test_models_and_methods_are_imported_not_named_by_strings():
    offenders = []
    for module, tree in modules().items():
        for node in ast.walk(tree):
            loads = (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
                     and getattr(node.func, "id", getattr(node.func, "attr", None)) in ("import_module", "__import__"))
            if loads and module not in LAZY_LOADERS:
                offenders.append(f"{module}:{node.lineno} loads code by name")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and re.fullmatch(r"skelact\.(models|methods)\.[\w.]+:\w+", node.value):
                offenders.append(f"{module}:{node.lineno} names {node.value!r}")
    assert not offenders, offenders
    from skelact.methods.registry import METHODS
    from skelact.models import CTRGCN, MODELS, STGCN

    assert MODELS["ctrgcn"] is CTRGCN and MODELS["stgcn"] is STGCN
    assert all(callable(spec.build) for spec in METHODS.values())


@pytest.mark.parametrize("layer", ["methods", "models", "data"])
def test_lower_layers_do_not_read_the_config(layer):
    """What the issue found: methods climbed back into skelact.config; builders now take their settings."""
    trees = modules()
    hits = [f"{m}:{line}" for m, t in trees.items() if layer_of(m) == layer
            for name, line in imports(t) if name.startswith("skelact.config")]
    assert not hits, hits


def test_argparse_only_in_the_cli_and_the_commands():
    hits = [f"{m}:{line}" for m, t in modules().items() if layer_of(m) not in ("cli", "commands")
            for node in ast.walk(t) for line in [getattr(node, "lineno", 0)]
            if (isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names))
            or (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "argparse")]
    assert not hits, hits


def test_no_module_imports_private_names_of_another():
    """Names used across files are public: ``from skelact.x import _name`` (of a function, class or constant)
    says the name is meant for its own module only."""
    hits = []
    for module, tree in modules().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("skelact"):
                hits += [f"{module}:{node.lineno} imports {node.module}.{a.name}" for a in node.names
                         if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Import):
                hits += [f"{module}:{node.lineno} imports {a.name}" for a in node.names
                         if a.name.startswith("skelact") and any(p.startswith("_") and not p.startswith("__")
                                                                 for p in a.name.split("."))]
    assert not hits, hits


def test_no_long_functions_in_the_commands():
    long = []
    for module, tree in modules().items():
        if layer_of(module) != "commands":
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_COMMAND_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, long


def test_cli_lists_every_command_module():
    """cli.py is only the table: every command module of skelact.commands is in it, with arguments and run."""
    from skelact import cli

    listed = {c.__name__.rsplit(".", 1)[1] for c in cli.COMMANDS}
    helpers = {"__init__", "arguments", "report_lines", "protocol_config"}
    files = {p.stem for p in (PACKAGE / "commands").glob("*.py")} - helpers
    assert listed == files
    assert all(callable(c.add_arguments) and callable(c.run) for c in cli.COMMANDS)
