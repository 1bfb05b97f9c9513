"""Built-in modalities of gmn-plugins (import name ``gmn_modalities``).

Every ``*.toml`` beside this file is one modality spec. They register through the same hook a third-party plugin
package implements (see ``docs/writing-a-modality-plugin.md``).
"""

from importlib.resources import files

from gmn_plugins import hookimpl


@hookimpl
def register_modalities(register):
    for path in sorted(files(__name__).iterdir(), key=lambda p: p.name):
        if path.name.endswith(".toml"):
            register(path)
