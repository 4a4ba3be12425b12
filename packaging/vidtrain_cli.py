"""Entry script of the one-folder build's ``vidtrain`` executable (packaging/vidtrain.spec): the command line."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from vidtrain_gui.entry import cli_main

    sys.exit(cli_main())
