"""No function in the training modules is over 60 lines (issue 32: a training loop in phases a newcomer can read).

Read with ``ast``: every def (functions, methods, nested functions, async ones), its length ``end_lineno - lineno + 1``
from the ``def`` line (decorators excluded) to its last line. A second test runs the checker on a synthetic 61-line
function, so the first cannot pass by checking nothing."""

import ast

from conftest import REPO

# the training package's modules, relative to the repository root
TRAINING_MODULES = sorted(str(p.relative_to(REPO)) for p in (REPO / "gmn_plugins" / "training").glob("*.py"))
MAX_LINES = 60


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int, int]]:
    """(qualified name, line of its ``def``, lines) of every function in ``source`` longer than ``limit`` lines, in
    source order; methods and nested functions are named by their enclosing classes and functions (``A.f.g``)."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + child.name
                if not isinstance(child, ast.ClassDef) and child.end_lineno - child.lineno + 1 > limit:
                    found.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, name + ".")
            else:
                visit(child, prefix)  # defs inside if/try/with blocks keep their enclosing name

    visit(ast.parse(source), "")
    return sorted(found, key=lambda f: f[1])


def test_no_function_in_the_training_modules_is_over_60_lines():
    too_long = [f"{path}:{line} {name} ({lines} lines)" for path in TRAINING_MODULES
                for name, line, lines in long_functions((REPO / path).read_text())]  # fmt: skip
    assert not too_long, (f"functions over {MAX_LINES} lines (split them into named steps; see train.py's phases):\n"
                          + "\n".join(too_long))  # fmt: skip


def _function(name: str, lines: int, indent: str = "") -> str:
    """Source of a function ``name`` of exactly ``lines`` lines (its ``def`` included), decorated."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 2))
    return f"{indent}@staticmethod\n{indent}def {name}():\n{body}{indent}    return 0\n"


def test_the_checker_reports_a_61_line_function_method_and_nested_function_and_not_a_60_line_one():
    source = (_function("fits", 60) + _function("top", 61)
              + "class Loop:\n" + _function("method", 61, "    ")
              + "def outer():\n" + _function("inner", 61, "    ") + "    return inner\n"
              + "if True:\n" + _function("guarded", 61, "    "))  # fmt: skip
    assert long_functions(source) == [("top", 63, 61), ("Loop.method", 126, 61), ("outer", 187, 64),
                                      ("outer.inner", 189, 61), ("guarded", 253, 61)]  # fmt: skip
    assert long_functions(_function("fits", 60)) == []


def test_the_training_package_is_found():
    """The glob finds the package's modules (a moved package would leave the first test checking nothing)."""
    assert {"gmn_plugins/training/trainer.py", "gmn_plugins/training/checkpoint.py"} <= set(TRAINING_MODULES)
