"""VidTrain: turn a handful of tagged video clips into a working video classifier.

Layers (imports point down, never up): core, media -> footage -> ml -> jobs -> cli, gui (which runs ml only
in job processes).
See docs/architecture.md.
"""

__version__ = "0.1.0"
