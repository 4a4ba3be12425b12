"""Media layer: probing, fingerprints, the frame index, exact frame access, thumbnails.

Imports neither Qt nor torch (nor any other VidTrain layer)."""

from vidtrain_gui.media.discover import iter_candidates
from vidtrain_gui.media.errors import MediaError
from vidtrain_gui.media.fingerprint import fingerprint
from vidtrain_gui.media.index import FrameIndex
from vidtrain_gui.media.probe import VideoProbe, probe
from vidtrain_gui.media.reader import VideoReader, sample_indices
from vidtrain_gui.media.thumbs import make_thumbnail

__all__ = [
    "FrameIndex",
    "MediaError",
    "VideoProbe",
    "VideoReader",
    "fingerprint",
    "iter_candidates",
    "make_thumbnail",
    "probe",
    "sample_indices",
]
