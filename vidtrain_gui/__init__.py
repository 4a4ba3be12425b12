"""VidTrain: turn a handful of tagged video clips into a working video classifier.

Layers (imports point down, never up): core, media -> footage -> ml -> jobs -> cli, gui (which runs ml only
in job processes).
See docs/architecture.md.
"""

__version__ = "0.2.0"  # the one place: pyproject.toml reads it, `vidtrain --version` and Help > About show it
