"""Thin launcher used by packaging/: start the VidTrain window."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # frozen apps that start processes need this first
    from vidtrain_gui.gui.app import main

    sys.exit(main(sys.argv[1:]))
