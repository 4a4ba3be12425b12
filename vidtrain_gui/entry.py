"""The entry point of ``vidtrain-gui``, installed script and one-folder executable alike: ``--job ARGS`` (hidden; how
the window starts jobs in a frozen build, see vidtrain_gui/launch.py) runs the command-line interface without
loading Qt; anything else opens the window. ``vidtrain`` in the one-folder build is :func:`cli_main`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vidtrain_gui.launch import JOB_FLAG, ensure_std_streams, is_frozen, startup_problem


def _checked() -> int | None:
    ensure_std_streams()
    if is_frozen() and (problem := startup_problem()) is not None:
        print(f"vidtrain: {problem}", file=sys.stderr)
        return 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``vidtrain-gui [--job ARGS | window options]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if (failed := _checked()) is not None:
        return failed
    if argv[:1] == [JOB_FLAG]:
        from vidtrain_gui.cli import main as run_cli

        return run_cli(argv[1:])
    from vidtrain_gui.gui.app import main as gui_main

    return gui_main(argv)


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``vidtrain ARGS`` (the one-folder build's command-line executable)."""
    if (failed := _checked()) is not None:
        return failed
    from vidtrain_gui.cli import main as run_cli

    return run_cli(list(sys.argv[1:] if argv is None else argv))


__all__ = ["cli_main", "main"]
