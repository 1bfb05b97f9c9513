"""Console scripts: ``gmn-run`` (run.py), ``gmn-plugins`` (plugins.py), ``gmn-data`` (data.py), ``gmn-eval`` (evaluate.py)."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from ..checkpoint import CheckpointError
from ..mese.generate import DataError
from ..spec import SpecError

USER_ERRORS = (SpecError, DataError, CheckpointError)
EXIT_USER_ERROR = 2


@contextmanager
def user_errors():
    """Turn a user mistake (bad spec, data, checkpoint) into its one-line message on stderr and exit code 2."""
    try:
        yield
    except USER_ERRORS as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        sys.exit(130)
