"""One plugin surface and the old paths (issue 32).

``gmn_plugins.plugin`` is everything a plugin author imports: the tutorial, the scaffold's output and the three
example packages import nothing else of gmn_plugins; importing it loads neither torch nor MuJoCo. The modules that
moved into the layered folders keep their old paths for one release, each a ``DeprecationWarning`` that gives the
new module itself.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest

from conftest import REPO
from gmn_plugins import plugin
from gmn_plugins._moved import MOVED
from gmn_plugins.authoring.scaffold import new_package

TUTORIAL = REPO / "docs" / "writing-a-modality-plugin.md"
EXAMPLES = sorted((REPO / "modalities").glob("gmn-*/gmn_*/*.py"))


def gmn_imports(source: str) -> list[tuple[str, list[str]]]:
    """(module, names) of every import of a gmn_plugins module anywhere in ``source`` (functions included); names
    is empty for ``import gmn_plugins.x``. Raises ``SyntaxError`` for source that does not parse."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "gmn_plugins":
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names if a.name.split(".")[0] == "gmn_plugins")
    return found


def off_surface(source: str, where: str) -> list[str]:
    """One line per import in ``source`` of anything but a name of ``gmn_plugins.plugin``."""
    problems = []
    for module, names in gmn_imports(source):
        if module != "gmn_plugins.plugin" or not names:
            problems.append(f"{where}: imports {module} (import from gmn_plugins.plugin only)")
        problems.extend(f"{where}: gmn_plugins.plugin has no {n!r}" for n in names if n not in plugin.__all__)
    return problems


def tutorial_imports() -> list[str]:
    """The import lines of the tutorial's Python code blocks (some blocks show signatures, not Python)."""
    blocks = re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if re.match(r"\s*(from|import) ", line)]  # fmt: skip


def test_the_checker_reports_an_import_off_the_surface():
    source = ("from gmn_plugins.plugin import Sensor, hookimpl\nfrom gmn_plugins.core.modality import Sensor\n"
              "import gmn_plugins.mese.hand\nfrom gmn_plugins.plugin import Nope\nfrom gmn_plugins import hookimpl\n"
              "def f():\n    from gmn_plugins.models.encoders import Encoder\n")  # fmt: skip
    assert off_surface(source, "x.py") == [
        "x.py: imports gmn_plugins.core.modality (import from gmn_plugins.plugin only)",
        "x.py: imports gmn_plugins.mese.hand (import from gmn_plugins.plugin only)",
        "x.py: gmn_plugins.plugin has no 'Nope'",
        "x.py: imports gmn_plugins (import from gmn_plugins.plugin only)",
        "x.py: imports gmn_plugins.models.encoders (import from gmn_plugins.plugin only)",
    ]


def test_the_examples_the_tutorial_and_the_scaffold_import_only_the_plugin_surface(tmp_path):
    assert len(EXAMPLES) >= 4 and len(tutorial_imports()) >= 5
    made = new_package("gmn-surface", tmp_path, family=True)
    sources = {str(p.relative_to(REPO)): p.read_text() for p in EXAMPLES}
    sources[TUTORIAL.name] = "\n".join(tutorial_imports())
    sources |= {f"scaffold: {p.relative_to(made)}": p.read_text() for p in sorted(made.rglob("*.py"))}
    problems = [line for where, source in sources.items() for line in off_surface(source, where)]
    assert not problems, "\n".join(problems)
    used = {n for source in sources.values() for _, names in gmn_imports(source) for n in names}
    assert {"hookimpl", "Sensor", "QueryKind", "Family", "Encoder", "Renderer", "check_modality"} <= used


def test_importing_the_surface_loads_neither_torch_nor_mujoco():
    code = ("import sys, gmn_plugins.plugin as p\n"
            "heavy = [m for m in ('torch', 'mujoco') if m in sys.modules]\n"
            "print(json.dumps([heavy, sorted(set(p.__all__) - set(dir(p)))]))\n"
            "p.Encoder\nprint(json.dumps('torch' in sys.modules))\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [[[], []], True]


def test_every_name_of_the_surface_is_its_defining_modules_own():
    from gmn_plugins.authoring import conformance
    from gmn_plugins.mese import hand
    from gmn_plugins.models import encoders, renderers

    assert plugin.Encoder is encoders.Encoder and plugin.VectorRenderer is renderers.VectorRenderer
    assert plugin.haptic_index_names is hand.haptic_index_names and plugin.check_modality is conformance.check_modality
    for name in plugin.__all__:
        assert getattr(plugin, name) is not None, name
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        plugin.Nope  # noqa: B018


def test_an_old_path_warns_and_is_the_new_module_and_a_new_path_does_not_warn():
    """In a fresh interpreter: every module of the package imports without a warning, and so does every name its
    packages load on first use; then every old path warns once, naming its new path, and is the new module object
    (``from gmn_plugins import spec`` too)."""
    code = f"""
import importlib, json, pathlib, sys, warnings
moved = {MOVED!r}
with warnings.catch_warnings():  # every module of the package but the old paths, and every lazily loaded name
    warnings.simplefilter("error")
    import gmn_plugins, gmn_plugins.models, gmn_plugins.plugin
    for path in sorted(pathlib.Path(gmn_plugins.__file__).parent.rglob("*.py")):
        parts = path.relative_to(pathlib.Path(gmn_plugins.__file__).parents[1]).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in moved:
            importlib.import_module(name)
    for package in (gmn_plugins, gmn_plugins.models, gmn_plugins.plugin):
        [getattr(package, n) for n in package.__all__]
result = {{}}
for old, new in moved.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    result[old] = [module is sys.modules[new], [(w.category.__name__, str(w.message)) for w in caught]]
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from gmn_plugins import spec
result["from"] = [spec is sys.modules["gmn_plugins.core.spec"], len(caught)]
print(json.dumps(result))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for old, new in MOVED.items():
        message = f"{old} moved to {new}; import it from there ({old} goes in the next release)"
        assert result[old] == [True, [["DeprecationWarning", message]]], old
    assert result["from"] == [True, 0]  # imported above: the same object, no second warning


def test_the_deprecation_warning_points_at_the_importing_line():
    code = "import warnings\nwarnings.simplefilter('always')\nimport gmn_plugins.spec\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("<string>:3: DeprecationWarning: gmn_plugins.spec moved to gmn_plugins.core.spec")
