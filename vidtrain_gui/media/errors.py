"""Errors of the media layer: why a file cannot be used as a video, as a short reason code and a sentence."""

from __future__ import annotations

# Reason codes, stable so the CLI's --json output and the window can switch on them.
NOT_FOUND = "not_found"
NOT_A_VIDEO = "not_a_video"
STILL_IMAGE = "still_image"
EMPTY = "empty"
TRUNCATED = "truncated"
UNREADABLE_CODEC = "unreadable_codec"
PERMISSION = "permission"
DECODE_ERROR = "decode_error"


class MediaError(Exception):
    """A file that cannot be read as a video; ``reason`` is one of the codes above."""

    def __init__(self, reason: str, message: str, path: str | None = None):
        super().__init__(message)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:  # one readable line
        return self.args[0]
