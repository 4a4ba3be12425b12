"""VidTrain: turn a handful of tagged video clips into a working video classifier.

Layers (imports point down, never up): core, media -> ml -> jobs -> cli, gui.
See docs/architecture.md.
"""

__version__ = "0.1.0"
