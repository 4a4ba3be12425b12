"""Entry point of the window (``vidtrain-gui``).

The window itself (player, timeline, classes, training panel) is built by the window issues; until then this
entry point says so and points at the headless CLI, which already does every job the window will start.
"""

from __future__ import annotations

import sys

MESSAGE = """VidTrain {version}: the window is coming in the next release.
Everything it will do is available headless now through the `vidtrain` command:
  vidtrain init MyProject
  vidtrain import MyProject ~/Videos/experiment1
  vidtrain classes add MyProject grooming
  vidtrain clips add MyProject --video 1 --start 120 --end 180 --class grooming
  vidtrain info MyProject
Run `vidtrain --help` for all commands."""


def main(argv: list[str] | None = None) -> int:
    from vidtrain_gui import __version__

    print(MESSAGE.format(version=__version__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
