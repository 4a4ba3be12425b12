"""Probe a file: is it a video, and what exactly is in it (verified, not taken from the header).

``probe(path)`` returns a :class:`VideoProbe` or raises :class:`MediaError` with a reason code. The frame count
is the number of frames that really decode (see :mod:`vidtrain_gui.media.index`), and ``seekable`` says that a
frame reached by seeking was checked to be the same picture as the frame reached by decoding forward.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import av

from vidtrain_gui.media import errors as E
from vidtrain_gui.media.errors import MediaError
from vidtrain_gui.media.fingerprint import fingerprint
from vidtrain_gui.media.index import FrameIndex, IndexBuild, build_index, frame_digest
from vidtrain_gui.media.reader import VideoReader, open_container

# Containers whose magic bytes say "this was meant to be a video" even when FFmpeg cannot open them.
_VIDEO_MAGIC = (b"ftyp", b"RIFF", b"\x1a\x45\xdf\xa3", b"moov", b"mdat", b"free", b"wide")
_IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif", "gif_pipe"}


@dataclass
class VideoProbe:
    path: str
    size_bytes: int
    fingerprint: str
    container: str
    codec: str
    pix_fmt: str | None
    width: int  # upright (rotation applied)
    height: int
    rotation: int  # degrees clockwise needed to show the picture upright, 0/90/180/270
    fps: float
    frame_count: int
    header_frame_count: int
    duration_s: float
    vfr: bool
    seekable: bool
    index: FrameIndex
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "index"}
        return d


def _looks_like_video(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return any(m in head for m in _VIDEO_MAGIC)


def _open(path: Path):
    if not path.exists():
        raise MediaError(E.NOT_FOUND, f"{path}: file not found", str(path))
    if path.is_dir():
        raise MediaError(E.NOT_A_VIDEO, f"{path}: is a folder", str(path))
    if not os.access(path, os.R_OK):
        raise MediaError(E.PERMISSION, f"{path}: permission denied", str(path))
    if path.stat().st_size == 0:
        raise MediaError(E.EMPTY, f"{path.name}: empty file (0 bytes)", str(path))
    try:
        container = open_container(path)
    except av.error.FFmpegError as exc:
        if _looks_like_video(path):
            message = f"{path.name}: damaged or truncated video ({exc.strerror})"
            raise MediaError(E.TRUNCATED, message, str(path)) from exc
        raise MediaError(E.NOT_A_VIDEO, f"{path.name}: not a video file", str(path)) from None
    if not container.streams.video:
        kind = "audio only" if container.streams.audio else "no streams"
        container.close()
        raise MediaError(E.NOT_A_VIDEO, f"{path.name}: not a video ({kind})", str(path))
    stream = container.streams.video[0]
    if container.format.name in _IMAGE_FORMATS and container.format.name != "gif":
        container.close()
        raise MediaError(E.STILL_IMAGE, f"{path.name}: a still image, not a video", str(path))
    codec = stream.codec_context.name if stream.codec_context else None
    try:
        if not codec or not av.codec.Codec(codec, "r"):
            raise ValueError
    except Exception:  # noqa: BLE001
        tag = stream.codec_tag if hasattr(stream, "codec_tag") else "?"
        container.close()
        raise MediaError(
            E.UNREADABLE_CODEC, f"{path.name}: no decoder for its video codec ({codec or tag})", str(path)
        ) from None
    return container, stream


def probe(path: str | os.PathLike, *, verify_seek: bool = True, known_fingerprint: str | None = None) -> VideoProbe:
    """Probe ``path``; ``known_fingerprint`` saves reading its ends again when the caller just computed it."""
    path = Path(path).absolute()
    container, stream = _open(path)
    try:
        stream.thread_type = "AUTO"
        codec = stream.codec_context.name
        pix_fmt = stream.codec_context.pix_fmt
        stream_size = (stream.codec_context.width, stream.codec_context.height)
        fmt = container.format.name
        try:
            build = build_index(container, stream)
        except av.error.FFmpegError as exc:
            raise MediaError(E.DECODE_ERROR, f"{path.name}: cannot decode ({exc.strerror})", str(path)) from None
    finally:
        container.close()
    index = build.index
    n = index.frame_count
    if n == 0:
        reason = E.UNREADABLE_CODEC if codec else E.EMPTY
        raise MediaError(reason, f"{path.name}: no frame of its {codec} video could be decoded", str(path))
    if n == 1:
        raise MediaError(E.STILL_IMAGE, f"{path.name}: a single picture, not a video", str(path))
    warnings = list(index.notes)
    if verify_seek:
        if not check_exact_seek(path, build):
            index.exact_seek = False
            warnings.append(
                "seeking in this file does not land on the right frames: frames are reached by decoding from the "
                "start (slow); re-encoding it (e.g. ffmpeg -i IN -c:v libx264 -g 30 OUT.mp4) makes it fast"
            )
    if index.is_vfr():
        warnings.append("variable frame rate: frame numbers stay exact, times come from each frame's timestamp")
    width, height = stream_size
    if int(round(index.rotation / 90.0)) % 2:
        width, height = height, width
    return VideoProbe(
        path=str(path),
        size_bytes=path.stat().st_size,
        fingerprint=known_fingerprint or fingerprint(path),
        container=fmt,
        codec=codec,
        pix_fmt=pix_fmt,
        width=width,
        height=height,
        rotation=(-index.rotation) % 360,
        fps=round(index.fps, 4),
        frame_count=n,
        header_frame_count=index.header_frame_count,
        duration_s=round(index.duration_s(), 4),
        vfr=index.is_vfr(),
        seekable=index.exact_seek,
        index=index,
        warnings=warnings,
    )


def check_exact_seek(path: Path, build: IndexBuild, n_checks: int = 3) -> bool:
    """True when frames reached by seeking are bit-identical to the same frames reached by decoding forward.

    References come from the index build's forward decode (the head, or the whole file) and, further in,
    from decoding forward across a keyframe from the one before it."""
    index = build.index
    keys = [int(k) for k in index.key_ordinals]
    if len(keys) < 2:
        return True  # every access decodes from the start anyway
    targets = sorted(o for o in build.digests if o >= keys[1])
    picks = targets[:: max(1, len(targets) // n_checks)][:n_checks] if targets else []
    with VideoReader(path, index) as r:
        for o in picks:
            r._start_at_key(index.keyframe_at_or_before(o))  # noqa: SLF001 - force the seek path
            if not r._run_to(o) or frame_digest(r._last) != build.digests[o]:  # noqa: SLF001
                return False
        # Mid-file, where the index build did not decode: forward across a keyframe from the one before it,
        # then a seek straight to that keyframe, must give the same picture a few frames in.
        k = len(keys) // 2
        if k >= 2:
            target = min(keys[k] + 4, index.frame_count - 1)
            r._start_at_key(k - 1)  # noqa: SLF001
            if not r._run_to(target):  # noqa: SLF001
                return False
            ref = frame_digest(r._last)  # noqa: SLF001
            r._start_at_key(index.keyframe_at_or_before(target))  # noqa: SLF001
            if not r._run_to(target) or frame_digest(r._last) != ref:  # noqa: SLF001
                return False
    return True
