"""Video rows without files, for the views that never decode (tables, panels, dialogs): 500 frames at ``fps``."""

from __future__ import annotations

from vidtrain_gui.core.videos import add_video


def fake_video(p, name: str, fps: float):
    return add_video(p, path=f"/v/{name}", fingerprint=f"fp-{name}", size_bytes=1, fps=fps, frame_count=500,
                     duration_s=20, width=64, height=48, codec="h264")  # fmt: skip
