"""The one-folder build's entry script (packaging/vidtrain.spec) and a way to run the app from a checkout:
``python app/main.py [PROJECT]``. Everything it does is vidtrain_gui.entry.main: ``--job ARGS`` runs a job,
anything else opens the window."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen app whose code starts processes needs this first (Windows)
    from vidtrain_gui.entry import main

    sys.exit(main())
