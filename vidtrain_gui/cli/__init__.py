"""``vidtrain``: every job and edit the window can do, headless, on a project path.

Output is for people by default and JSON with ``--json`` (one object per command, or one per line for
imports, which report as they go). Every error ends with a non-zero exit code and one line on stderr:
1 for an error, 2 for a usage mistake, 3 when an import refused some files (the rest were imported).

One module per feature: ``store`` (the project and its videos), ``labels`` (classes, clips, label files), ``jobs``
(jobs and their results), ``parser`` (every option), ``common`` (what they share); this module runs a command.
"""

from __future__ import annotations

import os
import sys

from vidtrain_gui.cli.common import EXIT_ERROR, CliError
from vidtrain_gui.cli.parser import build_parser
from vidtrain_gui.core.errors import VidTrainError
from vidtrain_gui.fsutil import DiskFullError, UnsafePathError


def _detached(argv: list[str]) -> None:
    """``--detached LOG`` (before the command): a job the window started detached, with nobody reading its output.
    Its standard output goes nowhere (the events are in the run's events file) and its standard error to LOG from
    the start, so that even a usage error is there for the window to show. It also runs at a lower priority (nice
    10): on a laptop whose cores the job fills, the window must still get the CPU at once when it needs it."""
    if "--detached" in argv[:-1]:
        if hasattr(os, "nice"):
            try:
                os.nice(10)
            except OSError:
                pass  # not allowed here: the job runs at the normal priority
        for fd, path, flags in (
            (1, os.devnull, os.O_WRONLY),
            (2, argv[argv.index("--detached") + 1], os.O_WRONLY | os.O_CREAT | os.O_APPEND),
        ):
            target = os.open(path, flags, 0o644)
            os.dup2(target, fd)
            os.close(target)


def main(argv: list[str] | None = None) -> int:
    _detached(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.json = getattr(args, "json", False)
    try:
        return args.func(args)
    except (VidTrainError, CliError, UnsafePathError, DiskFullError) as exc:
        print(f"vidtrain: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("vidtrain: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permissions...: say which file and why
        print(f"vidtrain: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - media errors and the unexpected: one line, not a traceback
        from vidtrain_gui.media.errors import MediaError

        detail = str(exc) if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
        print(f"vidtrain: error: {detail}", file=sys.stderr)
        return EXIT_ERROR


__all__ = ["build_parser", "main"]
