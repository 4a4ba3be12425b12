"""Before Qt starts: can its X11 plugin load? On a Linux desktop without some xcb libraries, Qt aborts with "Could not
load the Qt platform plugin xcb" and names a package the user may not need; here we name exactly what is missing.

Loading the libraries with ctypes is what Qt would do a moment later, so the check costs nothing. Only the X11
case is checked: offscreen, Wayland and other platforms need none of these."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Mapping

# The libraries PySide6's libqxcb.so needs beyond libxcb itself (ldd of the plugin), and the Debian/Ubuntu package
# of each. Fedora: xcb-util-wm, xcb-util-keysyms, xcb-util-cursor, xcb-util-image, xcb-util-renderutil.
XCB_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
}


def _loads(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_packages(loads: Callable[[str], bool] = _loads) -> list[str]:
    """The Debian/Ubuntu packages whose library Qt's X11 plugin needs and cannot load."""
    return [package for soname, package in XCB_LIBRARIES.items() if not loads(soname)]


def platform_problem(env: Mapping[str, str] | None = None, system: str | None = None,
                     loads: Callable[[str], bool] = _loads) -> str | None:  # fmt: skip
    """One line saying what to install when the window would open through X11 and cannot; None otherwise."""
    env = os.environ if env is None else env
    system = sys.platform if system is None else system
    if not system.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "")
    x11 = qpa.startswith("xcb") or (not qpa and bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY"))
    if not x11:
        return None
    missing = missing_packages(loads)
    if not missing:
        return None
    return (f"vidtrain-gui: the window cannot open: Qt's X11 plugin needs system libraries that are not installed; "
            f"on Debian or Ubuntu: sudo apt install {' '.join(missing)} (Fedora: sudo dnf install xcb-util-wm "
            "xcb-util-keysyms xcb-util-cursor xcb-util-image xcb-util-renderutil)")  # fmt: skip


__all__ = ["XCB_LIBRARIES", "missing_packages", "platform_problem"]
