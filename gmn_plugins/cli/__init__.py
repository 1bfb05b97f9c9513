"""Console scripts: ``gmn-run`` (run.py), ``gmn-plugins`` (plugins.py), ``gmn-data`` (data.py), ``gmn-eval`` (evaluate.py)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager

from ..runtime.faults import MachineError, describe
from ..runtime.files import CheckpointError, DataError
from ..runtime.locks import LockHeld
from ..core.spec import SpecError

USER_ERRORS = (SpecError, DataError, CheckpointError, LockHeld)
EXIT_USER_ERROR = 2  # the user's input: a bad spec, flag, dataset or checkpoint, a run already in use
EXIT_MACHINE_FAULT = 1  # the machine: disk full, read-only or forbidden directory


@contextmanager
def user_errors():
    """Turn a user mistake (bad spec, data, checkpoint, a locked run) into its one-line message on stderr and exit
    code 2, and a fault of the machine (disk full, read-only, permission) into one line and exit code 1."""
    try:
        yield
    except USER_ERRORS as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_MACHINE_FAULT)
    except MachineError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(EXIT_MACHINE_FAULT)
    except OSError as exc:  # any other file-system fault that no layer below turned into a MachineError
        where = exc.filename or "?"
        print(f"{where}: {describe(exc, where)}; fix that and re-run (finished work is kept)", file=sys.stderr)
        sys.exit(EXIT_MACHINE_FAULT)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        sys.exit(130)
