"""The modules that moved into the layered folders (issue 32), and the import hook that keeps their old paths.

No file is left at an old path (so git follows each move as a rename). ``gmn_plugins/__init__.py`` appends
``OLD_PATHS`` to ``sys.meta_path``: importing an old path (``import gmn_plugins.spec``, ``from gmn_plugins import
spec``, ``from gmn_plugins.spec import X``) warns with a ``DeprecationWarning`` pointing at the importing line and gives
the new module itself, so monkeypatching it, or reading a private name, keeps working. The old paths work for one
release (0.1.x) and go in the next; nothing inside the package imports them (tests/test_layers.py).
"""

import importlib
import sys
import warnings
from importlib.machinery import ModuleSpec

# {old module: new module}
MOVED = {
    **{f"gmn_plugins.{m}": f"gmn_plugins.runtime.{m}" for m in ("files", "locks", "faults", "threads", "allocator")},
    **{f"gmn_plugins.{m}": f"gmn_plugins.core.{m}" for m in (
        "spec", "modality", "modality_spec", "family", "families", "query", "points", "hookspecs", "plugins",
        "registry")},
    "gmn_plugins.train_options": "gmn_plugins.core.options",
    "gmn_plugins.models.options": "gmn_plugins.core.options",
    **{f"gmn_plugins.{m}": f"gmn_plugins.training.{m}" for m in ("checkpoint", "distributed", "figures", "experiment")},
    "gmn_plugins.train": "gmn_plugins.training.trainer",
    "gmn_plugins.evaluation.missing": "gmn_plugins.training.validation",
    **{f"gmn_plugins.{m}": f"gmn_plugins.authoring.{m}" for m in ("conformance", "scaffold")},
}  # fmt: skip


class OldPaths:
    """A ``sys.meta_path`` finder and loader of the old paths (the keys of ``MOVED``), asked only after the regular
    finders found no module of that name."""

    def find_spec(self, name: str, path=None, target=None) -> ModuleSpec | None:
        return ModuleSpec(name, self) if name in MOVED else None

    def create_module(self, spec: ModuleSpec):
        """The new module (imported if need be), after a ``DeprecationWarning`` attributed to the importing line."""
        new = MOVED[spec.name]
        # stacklevel 2: past this method; the import machinery's own frames are skipped
        warnings.warn(f"{spec.name} moved to {new}; import it from there ({spec.name} goes in the next release)",
                      DeprecationWarning, stacklevel=2)  # fmt: skip
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__  # the import sets module.__spec__ = spec: exec_module puts it back
        return module

    def exec_module(self, module) -> None:
        """Nothing to run (the module is the new one, already imported): it gets its own ``__spec__`` back."""
        module.__spec__ = module.__spec__.loader_state


OLD_PATHS = OldPaths()


def install() -> None:
    """Serve the old paths from now on (once per process; ``gmn_plugins/__init__.py`` calls it)."""
    if OLD_PATHS not in sys.meta_path:
        sys.meta_path.append(OLD_PATHS)
