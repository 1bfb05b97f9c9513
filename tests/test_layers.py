"""The package's folders are its layers (issue 32): no module imports a layer above its own.

Lowest first; the folders of one row are siblings and import neither each other:

    gmn_plugins (the package: __version__, hookimpl)   imports nothing of its own at module level
    core          spec, options, modality, family, query, points, the plugin hooks, manager and registry: the
                  vocabulary, torch- and MuJoCo-free
    runtime       files, locks, faults, threads, allocator (above core: allocator checks train.malloc against
                  core.options)
    data          the dataset format, episodes, masks, the training loader
    mese | models MESE writes datasets in data's format (so it sits above data); the networks read core's points
                  and families
    training      the experiment's model and data, the loop, its validation, checkpoints, distributed, figures
    api           the public Python API (below evaluation: the experiments render and score through api.Run)
    evaluation | authoring   the paper's experiments; the plugin author's conformance check and scaffold
    plugin        the plugin author's one import (re-exports core, models, mese and authoring)
    cli           the console tools

What counts is every import a module runs when it is imported: the module's top level, including blocks under
``if``/``try``, class bodies and ``if TYPE_CHECKING:`` (a type-only back-edge still makes a lower layer name a higher
one). An import inside a function or method is a lazy edge, allowed in any direction since it runs only when called
(the CLIs import torch-heavy modules only after their arguments are checked); the few that climb a layer are listed,
with their reasons, in ``LAZY_CLIMBS``. The old module paths (``gmn_plugins._moved.MOVED``) sit above everything:
nothing in the package may import them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gmn_plugins._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gmn_plugins"

LAYERS = (  # lowest first; a row's names are sibling layers; a name is a folder (sub-package) or a module
    ("gmn_plugins", "gmn_plugins._moved"),
    ("gmn_plugins.core",),
    ("gmn_plugins.runtime",),
    ("gmn_plugins.data",),
    ("gmn_plugins.mese", "gmn_plugins.models"),
    ("gmn_plugins.training",),
    ("gmn_plugins.api",),
    ("gmn_plugins.evaluation", "gmn_plugins.authoring"),
    ("gmn_plugins.plugin",),
    ("gmn_plugins.cli",),
)
DEPRECATED = len(LAYERS)  # the rank of the old paths: above everything
ROOT_LAYER = "gmn_plugins"  # the package's __init__ and _moved are one layer


def layer_of(module: str) -> tuple[int, str] | None:
    """(rank, layer name) of a module of the package: its old path's rank, its own name's, or its folder's; None for
    a module in no layer (a new top-level module must be given a row)."""
    if module in MOVED:
        return DEPRECATED, "deprecated path"
    for rank, row in enumerate(LAYERS):
        for name in row:
            if module == name:
                return rank, ROOT_LAYER if rank == 0 else name
    for rank, row in enumerate(LAYERS[1:], 1):
        for name in row:
            if module.startswith(name + "."):
                return rank, name
    return None


def _type_checking(test: ast.expr) -> bool:
    return ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def module_imports(source: str, module: str, is_package: bool, modules: set[str]) -> list[tuple[int, str, str]]:
    """The imports a module runs when imported: (line, imported module, how it reads), from its top level and the
    blocks under it (``if``, ``if TYPE_CHECKING:``, ``try``, ``with``) and class bodies, never from a function.
    ``from A import n`` imports ``A.n`` when that is a module of ``modules``, else ``A``; relative imports are
    resolved against the module's package. Raises ``SyntaxError`` for source that does not parse."""
    package = module if is_package else module.rpartition(".")[0]
    found = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, a.name, ast.unparse(node)) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                for a in node.names:
                    target = f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    found.append((node.lineno, target, ast.unparse(node)))
            elif isinstance(node, ast.ClassDef):  # a class body runs at import
                visit(node.body)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(source).body)
    return found


def back_edges(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """One line per import of ``sources`` ({module: (source text, is a package)}) that reaches a higher layer, a
    sibling layer or a deprecated path, naming the module, its line and the import; one line per module in no
    layer. Imports of modules outside the package are ignored."""
    modules = set(sources) | set(MOVED)
    problems = []
    for module, (source, is_package) in sorted(sources.items()):
        own = layer_of(module)
        if own is None:
            problems.append(f"{module}: in no layer; give it a row of LAYERS (tests/test_layers.py)")
            continue
        for line, target, text in module_imports(source, module, is_package, modules):
            if target.partition(".")[0] != ROOT_LAYER:
                continue
            theirs = layer_of(target)
            if theirs is None or own[1] == theirs[1] or own[0] == DEPRECATED:
                continue
            if theirs[0] > own[0]:
                problems.append(f"{module}:{line}: {text!r} imports {target}: layer {theirs[1]} is above {own[1]}")
            elif theirs[0] == own[0]:
                problems.append(f"{module}:{line}: {text!r} imports {target}: sibling layers {own[1]} and {theirs[1]}")
    return problems


def package_sources() -> dict[str, tuple[str, bool]]:
    """{module name: (source, is a package)} of every module under gmn_plugins/."""
    sources = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        sources[".".join(parts[:-1] if is_package else parts)] = (path.read_text(), is_package)
    return sources


def test_no_module_imports_a_higher_or_a_sibling_layer():
    problems = back_edges(package_sources())
    assert not problems, "back-edges between the layers:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, module, expected", [
    ("from ..training import trainer\n", "gmn_plugins.core.points",
     "gmn_plugins.core.points:1: 'from ..training import trainer' imports gmn_plugins.training.trainer: layer "
     "gmn_plugins.training is above gmn_plugins.core"),
    ("import numpy\nif True:\n    import gmn_plugins.cli.run\n", "gmn_plugins.data.format",
     "gmn_plugins.data.format:3: 'import gmn_plugins.cli.run' imports gmn_plugins.cli.run: layer gmn_plugins.cli is "
     "above gmn_plugins.data"),
    ("class Eager:\n    from ..evaluation.runs import Run\n", "gmn_plugins.mese.extra",
     "gmn_plugins.mese.extra:2: 'from ..evaluation.runs import Run' imports gmn_plugins.evaluation.runs: layer "
     "gmn_plugins.evaluation is above gmn_plugins.mese"),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gmn_plugins.mese.hand import Hand\n",
     "gmn_plugins.models.gmn",
     "gmn_plugins.models.gmn:3: 'from gmn_plugins.mese.hand import Hand' imports gmn_plugins.mese.hand: sibling "
     "layers gmn_plugins.models and gmn_plugins.mese"),
    ("from .. import spec\n", "gmn_plugins.data.episodes",
     "gmn_plugins.data.episodes:1: 'from .. import spec' imports gmn_plugins.spec: layer deprecated path is above "
     "gmn_plugins.data"),
    ("from . import hookimpl\n", "gmn_plugins.helpers", "gmn_plugins.helpers: in no layer; give it a row of LAYERS "
     "(tests/test_layers.py)"),
])  # fmt: skip
def test_the_checker_reports_a_back_edge(source, module, expected):
    """The checker itself catches what it must: a synthetic module with a back-edge, among the real ones."""
    sources = {**package_sources(), module: (source, False)}
    assert expected in back_edges(sources)


def test_the_checker_allows_lazy_imports_and_imports_below():
    source = ("from ..core.points import Points\nfrom ..runtime import files\nimport torch\n\n\ndef lazy():\n"
              "    from ..training import trainer\n\n\nclass Lazy:\n    def method(self):\n"
              "        from ..cli import run\n")  # fmt: skip
    assert back_edges({**package_sources(), "gmn_plugins.data.extra": (source, False)}) == []


# The lazy edges that climb a layer (an import inside a function), each with its reason. A new one fails the test
# below until it is listed here: prefer moving the code to the layer it belongs to.
LAZY_CLIMBS = {
    ("gmn_plugins", "__getattr__", "gmn_plugins.api"): "the package's public names load torch only on first use",
    ("gmn_plugins.api", "open_run", "gmn_plugins.evaluation.runs"): "a run opens as gmn-eval opens it",
    ("gmn_plugins.api", "classify", "gmn_plugins.evaluation.classification"): "Run.classify scores as gmn-eval does",
}


def lazy_climbs(sources: dict[str, tuple[str, bool]]) -> set[tuple[str, str, str]]:
    """(module, function, imported module) of every import inside a function that reaches a higher or a sibling
    layer."""
    modules = set(sources) | set(MOVED)
    found = set()
    for module, (source, is_package) in sources.items():
        own = layer_of(module)
        if own is None or own[0] == DEPRECATED:
            continue
        for function in ast.walk(ast.parse(source)):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            imports = [n for n in ast.walk(function) if isinstance(n, (ast.Import, ast.ImportFrom))]
            text = ast.unparse(ast.Module(body=imports, type_ignores=[]))
            for _, target, _ in module_imports(text, module, is_package, modules):
                theirs = layer_of(target) if target.partition(".")[0] == ROOT_LAYER else None
                if theirs is not None and theirs[1] != own[1] and theirs[0] >= own[0]:
                    found.add((module, function.name, target))
    return found


def test_the_lazy_imports_that_climb_a_layer_are_the_listed_ones():
    assert lazy_climbs(package_sources()) == set(LAZY_CLIMBS)
    lazy = "def f():\n    from ..training.trainer import train\n"
    assert ("gmn_plugins.data.extra", "f", "gmn_plugins.training.trainer") in lazy_climbs(
        {**package_sources(), "gmn_plugins.data.extra": (lazy, False)})


def test_module_level_imports_have_no_cycle():
    """Within a layer too, the imports a module runs at import time form no cycle (``if TYPE_CHECKING:`` blocks
    left out: they never run). The cycles on paper stay lazy: mese.grasp names mese.hand's ``Hand`` for type
    checkers only (hand imports grasp); mese.queries opens its rigs through hand, grasp and scene inside the
    functions that open them (the plugin registry imports queries in torch- and mujoco-free processes), and
    mese.scene takes the built-in query kinds inside SceneMaker, when no others are given."""
    sources = package_sources()
    modules = set(sources) | set(MOVED)
    graph = {}
    for module, (source, is_package) in sources.items():
        tree = ast.parse(source)
        tree.body = [n for n in tree.body if not (isinstance(n, ast.If) and _type_checking(n.test))]
        graph[module] = {t for _, t, _ in module_imports(ast.unparse(tree), module, is_package, modules)
                         if t in sources and t != module}  # fmt: skip
    done, path = set(), []

    def visit(module: str) -> None:
        if module in path:
            raise AssertionError("an import cycle: " + " -> ".join([*path[path.index(module):], module]))
        if module in done:
            return
        path.append(module)
        for target in sorted(graph[module]):
            if not (module.startswith(target + ".") and sources[target][1]):  # a module's own package runs first
                visit(target)
        path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


def test_every_folder_of_the_package_is_installed():
    """A non-editable ``pip install .`` installs the packages pyproject.toml lists: every folder with an
    ``__init__.py`` must be one of them, and every folder is a layer."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    assert folders <= listed, sorted(folders - listed)
    assert all(layer_of(f) is not None for f in folders)


def test_the_core_layer_imports_neither_torch_nor_mujoco():
    """Every layer may read core (the MESE data workers and the CLIs' argument checks load it): it stays light."""
    core = sorted(name for name in package_sources() if name.startswith("gmn_plugins.core"))
    code = (f"import importlib, sys\nfor name in {core!r}:\n    importlib.import_module(name)\n"
            "print(sorted(m for m in ('torch', 'mujoco') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(core) >= 12 and done.stdout == "[]\n"
