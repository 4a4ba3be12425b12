"""How the app starts itself and what it says about its installation: launch.py (job command lines, the frozen
build's glibc check, the desktop entry, missing standard streams), entry.py (the hidden ``--job`` entry point),
buildinfo.py (CUDA version, NVIDIA GPU detection) and the CLI's ``--version``, ``demo`` and ``install-desktop``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidtrain_gui import __version__, buildinfo, launch
from vidtrain_gui.core.project import Project


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, **kw)


# --- job command lines ----------------------------------------------------------------------------------------------


def test_jobs_run_as_python_module_from_an_environment_and_as_the_apps_executable_when_frozen(monkeypatch):
    assert launch.cli_command(["train", Path("p")]) == (sys.executable, ["-m", "vidtrain_gui.cli", "train", "p"])
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/VidTrain/vidtrain-gui")
    assert launch.is_frozen()
    assert launch.cli_command(["train", "p"]) == ("/opt/VidTrain/vidtrain-gui", ["--job", "train", "p"])


def test_the_hidden_job_entry_runs_the_command_line_without_qt(tmp_path):
    Project.create(tmp_path / "p").close()
    code = ("import sys; from vidtrain_gui.entry import main; rc = main(sys.argv[1:]); "
            "assert 'PySide6' not in sys.modules, 'the job loaded Qt'; sys.exit(rc)")  # fmt: skip
    out = _run("-c", code, "--job", "--json", "info", str(tmp_path / "p"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["videos"] == []


# --- the frozen build's check of the machine -----------------------------------------------------------------------


@pytest.mark.parametrize(("libc", "needed", "problem"), [
    (("glibc", "2.36"), "2.34", None),
    (("glibc", "2.34"), "2.34", None),
    (("glibc", "2.39"), "2.4", None),  # 2.39 is newer than 2.4: versions compare as numbers
    (("glibc", "2.31"), "2.34", "needs glibc 2.34 or newer; this system has glibc 2.31"),
    (("", ""), "2.34", "musl-based systems such as Alpine cannot run it"),
])  # fmt: skip
def test_a_build_says_when_the_systems_glibc_is_too_old(libc, needed, problem):
    found = launch.startup_problem({"glibc_needed": needed}, libc=libc, system="linux")
    assert found is None if problem is None else problem in found
    if problem is not None and libc[1]:
        assert f"this system has glibc {libc[1]}" in found and "pip" in found


def test_no_glibc_check_without_a_build_record_or_off_linux():
    assert launch.startup_problem({}, libc=("glibc", "2.17"), system="linux") is None
    assert launch.startup_problem({"glibc_needed": "2.34"}, libc=("", ""), system="win32") is None


def test_the_frozen_entry_refuses_an_old_glibc_before_loading_anything(tmp_path):
    """sys.frozen set and a build record asking for a glibc from the future: one clear line, exit 1, no Qt."""
    code = ("import sys; sys.frozen = True; from vidtrain_gui import launch; "
            "launch.build_info = lambda: {'glibc_needed': '99.0'}; from vidtrain_gui.entry import main; "
            "rc = main(['--job', '--version']); assert 'PySide6' not in sys.modules; sys.exit(rc)")  # fmt: skip
    out = _run("-c", code)
    if not sys.platform.startswith("linux"):
        pytest.skip("the glibc check is Linux's")
    assert out.returncode == 1 and "needs glibc 99.0 or newer" in out.stderr and out.stdout == ""


def test_the_build_record_is_read_from_the_packages_resources():
    assert launch.resource("vidtrain.svg").is_file() and launch.resource("vidtrain.desktop").is_file()
    assert launch.build_info() == {} or "vidtrain" in launch.build_info()  # a checkout has none; a build has one


# --- standard streams ----------------------------------------------------------------------------------------------


def test_a_process_without_standard_streams_gets_them_back():
    """A windowed Windows executable starts with sys.stdout None: a job's output must not raise."""
    code = ("import sys; sys.stdout = sys.stderr = None; from vidtrain_gui.launch import ensure_std_streams; "
            "ensure_std_streams(); sys.stdout.write('out\\n'); sys.stdout.flush(); "
            "print('err', file=sys.stderr)")  # fmt: skip
    out = _run("-c", code)
    assert out.returncode == 0 and out.stdout == "out\n" and out.stderr == "err\n"


# --- the desktop entry ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="desktop entries are Linux's")
def test_the_desktop_entry_points_at_this_installations_window_and_is_removed_again(tmp_path, monkeypatch):
    executable = tmp_path / "env" / "bin" / "vidtrain-gui"
    executable.parent.mkdir(parents=True)
    executable.write_text("#!/bin/sh\n")
    monkeypatch.setattr(sys, "executable", str(executable.parent / "python"))
    files = launch.install_desktop_entry(tmp_path / "share")
    entry, icon = tmp_path / "share/applications/vidtrain.desktop", tmp_path / "share/icons/hicolor/scalable/apps"
    assert files == [entry, icon / "vidtrain.svg"] and (icon / "vidtrain.svg").read_bytes().startswith(b"<svg")
    lines = entry.read_text().splitlines()
    assert f'Exec="{executable}"' in lines and f"Icon={icon / 'vidtrain.svg'}" in lines and "Name=VidTrain" in lines
    assert launch.install_desktop_entry(tmp_path / "share", uninstall=True) == files and not entry.exists()
    executable.unlink()
    with pytest.raises(FileNotFoundError, match="vidtrain-gui is missing"):
        launch.install_desktop_entry(tmp_path / "share")


# --- what is installed -------------------------------------------------------------------------------------------


def test_the_cuda_version_comes_from_the_torch_wheels_tag_or_nvidias_runtime(monkeypatch):
    versions = {"torch": "2.14.1+cu130"}
    monkeypatch.setattr(buildinfo, "_version", versions.get)
    assert buildinfo.cuda_version() == "13.0"
    versions["torch"] = "2.5.1+cu121"
    assert buildinfo.cuda_version() == "12.1"
    versions["torch"] = "2.14.1+cpu"
    assert buildinfo.cuda_version() is None
    versions.update({"torch": "2.14.1", "nvidia-cuda-runtime": "13.0.96"})
    monkeypatch.setattr(buildinfo, "torch_build", lambda: "CUDA")
    assert buildinfo.cuda_version() == "13.0"


def _pci(root: Path, name: str, vendor: str, klass: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "vendor").write_text(vendor + "\n")
    (root / name / "class").write_text(klass + "\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PCI devices are read from Linux's /sys")
def test_an_nvidia_gpu_is_found_among_the_pci_devices(tmp_path):
    _pci(tmp_path, "0000:00:01.0", "0x8086", "0x030000")  # an Intel GPU
    _pci(tmp_path, "0000:00:02.0", "0x10de", "0x040300")  # NVIDIA audio (an HDMI codec): not a GPU
    assert buildinfo.nvidia_gpu_present(tmp_path) is False
    _pci(tmp_path, "0000:01:00.0", "0x10de", "0x030200")  # an NVIDIA 3D controller (data-centre GPU)
    assert buildinfo.nvidia_gpu_present(tmp_path) is True
    assert buildinfo.nvidia_gpu_present(tmp_path / "absent") is None


def test_cpu_note_says_why_a_gpu_in_the_machine_is_not_used(monkeypatch):
    torch = pytest.importorskip("torch")
    from vidtrain_gui.ml import device

    monkeypatch.setattr(device, "_cuda_problem", lambda: "no CUDA GPU is visible; check the NVIDIA driver")
    assert device.cpu_note("cpu", gpu_present=True) == (
        "running on the CPU: this machine has an NVIDIA GPU, but no CUDA GPU is visible; check the NVIDIA driver"
    )
    assert device.cpu_note("cpu", gpu_present=False) is None  # no GPU: nothing to explain
    assert device.cpu_note(torch.device("cuda", 0), gpu_present=True) is None
    monkeypatch.setattr(device, "_cuda_problem", lambda: None)
    assert device.cpu_note("cpu", gpu_present=True) is None  # CPU chosen although CUDA works: the user's choice


def test_version_names_vidtrain_torch_cuda_and_qt():
    out = _run("-m", "vidtrain_gui.cli", "--version")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == f"vidtrain {__version__}"
    names = [line.split(":")[0] for line in lines[1:]]
    assert {"VidTrain", "Python", "PySide6 (Qt)", "torch", "CUDA (torch build)"} <= set(names)
    assert __version__ in _run("-c", "from vidtrain_gui.entry import main; main(['--version'])").stdout


def test_the_demo_command_makes_the_demo_project(tmp_path):
    out = _run("-m", "vidtrain_gui.cli", "--json", "demo", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == {"project": str(tmp_path / "demo")}
    info = _run("-m", "vidtrain_gui.cli", "--json", "info", str(tmp_path / "demo"))
    assert len(json.loads(info.stdout)["videos"]) == 3
    again = _run("-m", "vidtrain_gui.cli", "demo", str(tmp_path / "demo"))
    assert again.returncode == 1 and "cannot be made" in again.stderr
