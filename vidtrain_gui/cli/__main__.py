"""``python -m vidtrain_gui.cli``: the ``vidtrain`` command (the window and torchrun start jobs this way)."""

import sys

from vidtrain_gui.cli import main

if __name__ == "__main__":  # importing this module (a package walk) must not run a command
    sys.exit(main())
