"""The fault campaign: real faults against the real ``vidtrain`` command, bounded, with a verdict per fault.

Three kinds of fault, each on a fresh copy of one small project (generated videos of two classes, tagged):

1. **kill -9** at a random moment of ``import``, ``features``, ``train``, ``predict`` and ``import-labels``, while
   a labeller in this process adds clips one committed transaction at a time (as the window does during a job);
2. **disk full** (a small tmpfs, root only; skipped otherwise): the same commands, plus ``clips add`` and
   ``export labels --out`` over an earlier export, on a disk with no room left;
3. **corrupt cache files**: a random feature ``.npy``/``.json``, frame index ``.npz`` or thumbnail emptied,
   truncated or filled with garbage, then ``features``, ``train`` and ``predict``;
4. **a damaged database page**: random bytes over one page of ``project.vidtrain``; an edit must be refused in one
   line without writing to the file, and ``vidtrain restore`` must bring the last good copy back.

After each fault the project is checked as a user would find it:

- **lost**: clips whose commit had returned (to the labeller, or before the fault) and that are gone, plus a label
  file imported only in part (import-labels is all or nothing);
- **stuck**: a run still queued/running once its process is gone and ``vidtrain runs list`` has run (it reaps),
  or a project on which the same command no longer succeeds once the fault is over;
- **crash**: a command that printed a Python traceback, or failed without a one-line ``vidtrain: error:``.

Target: 0 lost, 0 stuck, 0 crashes.

    .venv/bin/python bench/faults.py [--kills 4] [--corrupt 8] [--db-pages 6] [--seed 0]

``--kills`` is per command (5 commands). Results go to bench/out/faults.json and are summarised in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

from benchutil import cpu_name  # noqa: E402
from diskfill import fill  # noqa: E402
from videogen import write_pyav  # noqa: E402

from vidtrain_gui.core import classes as CL  # noqa: E402
from vidtrain_gui.core import labels as L  # noqa: E402
from vidtrain_gui.core import videos as V  # noqa: E402
from vidtrain_gui.core.project import Project  # noqa: E402

OUT = REPO / "bench" / "out"
COMMAND_TIMEOUT_S = 600
JOB_ARGS = {  # small and quick: the faults, not the model, are under test
    "features": ["--fps", "4"],
    "train": ["--fps", "4", "--epochs", "30", "--patience", "30"],
    "predict": ["--folds", "2"],
}


@dataclass
class Fault:
    kind: str  # kill, disk-full, corrupt
    target: str  # the command, or the file damaged
    detail: str = ""
    lost: int = 0
    stuck: int = 0
    crash: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.stuck or self.crash)


def vt(*args, env=None, timeout=COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)  # fmt: skip


def crashed(r: subprocess.CompletedProcess) -> str | None:
    """Why a finished command counts as a crash, or None: a traceback, or a failure without its one line."""
    if "Traceback (most recent call last)" in r.stderr:
        return "traceback: " + r.stderr.strip().splitlines()[-1][:160]
    if r.returncode not in (0, 1, 2, 3):
        return f"exit {r.returncode}"
    if r.returncode != 0 and not any(line.startswith("vidtrain") for line in r.stderr.splitlines()):
        return f"exit {r.returncode} without a message: {r.stderr.strip()[-160:]!r}"
    return None


# --- the project ---------------------------------------------------------------------------------------------


def build_base(folder: Path) -> tuple[Path, list[Path], list[Path], Path]:
    """A tagged project of six short videos (two motions), their files, four videos not imported yet, and a label
    file of more clips."""
    footage = folder / "footage"
    footage.mkdir(parents=True)
    motions = ["left", "right"] * 3
    videos = [write_pyav(footage / f"{m}{k}.mp4", 60 + k, gop=12, motion=m, size=(160, 96))
              for k, m in enumerate(motions)]  # fmt: skip
    extra = [write_pyav(footage / f"extra{k}.mp4", 90 + k, gop=12, motion="left", size=(160, 96)) for k in range(4)]
    root = folder / "base"
    r = vt("init", root)
    assert r.returncode == 0, r.stderr
    r = vt("import", root, *videos)
    assert r.returncode == 0, r.stderr
    with Project.open(root) as p:
        for name in ("left", "right"):
            CL.add_class(p, name)
        ids = {c.name: c.id for c in CL.list_classes(p)}
        for v in V.list_videos(p):
            for s in (0, 20, 40):
                L.add_clip(p, v.id, s, s + 20, ids["left" if v.name.startswith("left") else "right"])
    labels = folder / "more-labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["video", "start_frame", "end_frame", "class"])
        for k, m in enumerate(motions):
            for s in range(0, 50, 5):
                w.writerow([str(videos[k]), s + 1, s + 9, m])
    # Features, a trained run and predictions, so that later faults find caches and runs to damage.
    for command in ("features", "train", "predict"):
        r = vt(command, root, *JOB_ARGS[command])
        assert r.returncode == 0, (command, r.stderr)
    return root, videos, extra, labels


def clips_of(root: Path) -> set[tuple]:
    with Project.open(root, readonly=True) as p:
        return {(c.video_id, c.start_frame, c.end_frame, c.class_id) for c in L.list_clips(p)}


class Labeller(threading.Thread):
    """Adds clips one transaction at a time, as a user tagging in the window during a job; ``committed`` holds
    those whose commit returned."""

    def __init__(self, root: Path):
        super().__init__(daemon=True)
        self.root, self.committed, self.errors = root, [], []
        self._halt = threading.Event()

    def run(self):
        with Project.open(self.root) as p:
            video = V.list_videos(p)[0]
            cls = CL.list_classes(p)[0].id
            start = 1000
            while not self._halt.is_set() and start < 5000:
                try:
                    L.add_clip(p, video.id, start % video.frame_count, start % video.frame_count + 1, cls)
                    self.committed.append((video.id, start % video.frame_count, start % video.frame_count + 1, cls))
                except Exception as exc:  # noqa: BLE001 - a busy database is retried; anything else is noted
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                start += 7
                time.sleep(0.05)

    def stop(self):
        self._halt.set()
        self.join(10)


def check_runs(root: Path, fault: Fault) -> None:
    r = vt("runs", "list", root, "--json")  # reaps runs whose process is gone
    if (why := crashed(r)) or r.returncode:
        fault.crash += 1
        fault.notes.append(f"runs list: {why or r.stderr.strip()}")
        return
    unfinished = [x for x in json.loads(r.stdout) if x["status"] in ("queued", "running")]
    if unfinished:
        fault.stuck += len(unfinished)
        fault.notes.append(f"left {[(x['id'], x['status']) for x in unfinished]}")


def recover(root: Path, command: list, fault: Fault) -> None:
    """The same command, once the fault is over, must succeed."""
    r = vt(*command)
    refused_duplicates = command[0] == "import" and r.returncode == 3  # the videos imported before the fault
    if why := crashed(r):
        fault.crash += 1
        fault.notes.append(f"rerun: {why}")
    elif r.returncode != 0 and not refused_duplicates:
        fault.stuck += 1
        fault.notes.append(f"rerun failed: {r.stderr.strip()[-200:]}")


# --- 1. kill -9 ----------------------------------------------------------------------------------------------


def kill_fault(base: Path, work: Path, command: str, videos: list[Path], labels: Path, rng: random.Random,
               typical_s: dict[str, float]) -> Fault:  # fmt: skip
    root = work / f"kill-{command}-{rng.randrange(10**6)}"
    shutil.copytree(base, root)
    if command == "import":
        args = ["import", root, *videos]  # videos not in the project yet
    elif command == "import-labels":
        args = ["import-labels", root, labels]
    else:
        args = [command, root, *JOB_ARGS[command]]
        if command == "features":
            shutil.rmtree(root / "cache" / "features")  # so that the kill lands in real work
    before = clips_of(root)
    delay = rng.uniform(0.0, typical_s.get(command, 5.0))
    fault = Fault("kill", command, f"after {delay:.2f} s")
    labeller = Labeller(root)
    labeller.start()
    proc = subprocess.Popen([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(delay)
    finished_first = proc.poll() is not None
    if not finished_first:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    labeller.stop()
    if finished_first:
        fault.detail += " (ended before the kill)"
    after = clips_of(root)
    committed = before | set(labeller.committed)
    missing = committed - after
    fault.lost += len(missing)
    if command == "import-labels":
        added = after - committed
        expected = sum(1 for _ in open(labels, encoding="utf-8")) - 1
        if added and len(added) != expected:
            fault.lost += 1
            fault.notes.append(f"label file imported in part: {len(added)} of {expected} clips")
    if labeller.errors:
        fault.notes.append(f"labeller: {labeller.errors[:2]}")
    check_runs(root, fault)
    recover(root, args, fault)
    shutil.rmtree(root, ignore_errors=True)
    return fault


# --- 2. disk full --------------------------------------------------------------------------------------------


def mount_small_disk(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0  # fmt: skip


def disk_full_faults(base: Path, work: Path, videos: list[Path], labels: Path) -> list[Fault]:
    disk = work / "small-disk"
    size_mb = sum(f.stat().st_size for f in base.rglob("*") if f.is_file()) // 2**20 + 64
    if not mount_small_disk(disk, f"{size_mb}m"):
        return [Fault("disk-full", "all", "skipped: needs root and tmpfs", notes=["skipped"])]
    faults = []
    try:
        root = disk / "proj"
        shutil.copytree(base, root)
        export = disk / "labels.csv"
        r = vt("export", "labels", root, "--out", export)
        assert r.returncode == 0, r.stderr
        old_export = export.read_bytes()
        shutil.rmtree(root / "cache" / "features")  # so that features has something to write
        commands = [
            ("clips add", ["clips", "add", root, "--video", "1", "--start", "3", "--end", "9", "--class", "left"]),
            ("import-labels", ["import-labels", root, labels]),
            ("export labels", ["export", "labels", root, "--out", export]),
            ("features", ["features", root, *JOB_ARGS["features"]]),
            ("train", ["train", root, *JOB_ARGS["train"]]),
            ("import", ["import", root, *videos]),
            ("info", ["info", root]),
        ]
        for name, args in commands:
            before = clips_of(root)
            filler = fill(disk)
            fault = Fault("disk-full", name)
            r = vt(*args)
            if why := crashed(r):
                fault.crash += 1
                fault.notes.append(why)
            fault.detail = f"exit {r.returncode}: {r.stderr.strip().splitlines()[-1][:150] if r.stderr.strip() else ''}"
            filler.unlink()
            missing = before - clips_of(root)
            fault.lost += len(missing)
            if name == "export labels" and export.read_bytes() != old_export:
                fault.lost += 1
                fault.notes.append("the earlier export was changed")
            check_runs(root, fault)
            recover(root, args, fault)
            if name == "export labels":
                old_export = export.read_bytes()
            faults.append(fault)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    return faults


# --- 3. corrupt cache files ----------------------------------------------------------------------------------

DAMAGE = ("empty", "truncate", "garbage")


def damage(path: Path, how: str, rng: random.Random) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncate":
        path.write_bytes(data[: max(1, len(data) // 3)])
    else:
        path.write_bytes(bytes(rng.randrange(256) for _ in range(max(64, min(len(data), 4096)))))


def corrupt_fault(base: Path, work: Path, rng: random.Random) -> Fault:
    root = work / f"corrupt-{rng.randrange(10**6)}"
    shutil.copytree(base, root)
    candidates = sorted(p for p in (root / "cache").rglob("*") if p.is_file() and p.suffix in
                        (".npy", ".json", ".npz", ".jpg"))  # fmt: skip
    target = rng.choice(candidates)
    how = rng.choice(DAMAGE)
    damage(target, how, rng)
    fault = Fault("corrupt", str(target.relative_to(root)), how)
    before = clips_of(root)
    for command in ("features", "train", "predict"):
        r = vt(command, root, *JOB_ARGS[command])
        if why := crashed(r):
            fault.crash += 1
            fault.notes.append(f"{command}: {why}")
        elif r.returncode != 0:
            fault.stuck += 1
            fault.notes.append(f"{command} failed: {r.stderr.strip()[-200:]}")
    fault.lost += len(before - clips_of(root))
    check_runs(root, fault)
    shutil.rmtree(root, ignore_errors=True)
    return fault


# --- 4. a damaged database page ------------------------------------------------------------------------------


def db_page_fault(base: Path, work: Path, rng: random.Random) -> Fault:
    """Random bytes over one page of project.vidtrain (after a known-good copy was taken): an edit must be refused
    in one line without touching the file, and ``vidtrain restore`` must bring back a project that works."""
    root = work / f"dbpage-{rng.randrange(10**6)}"
    shutil.copytree(base, root)
    shutil.rmtree(root / "backups", ignore_errors=True)
    r = vt("clips", "add", root, "--video", "1", "--start", "3", "--end", "9", "--class", "left")  # takes a copy
    db = root / "project.vidtrain"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file, where the damage goes
    conn.close()
    pages = db.stat().st_size // 4096
    page = rng.randrange(1, pages)
    with open(db, "r+b") as f:
        f.seek(page * 4096)
        f.write(rng.randbytes(4096))
    damaged = db.read_bytes()
    fault = Fault("db-page", f"page {page} of {pages}")
    r = vt("clips", "add", root, "--video", "1", "--start", "11", "--end", "19", "--class", "left")
    if why := crashed(r):
        fault.crash += 1
        fault.notes.append(why)
    elif r.returncode == 0:
        fault.detail = "the damage was not in a page the check reads (edit accepted)"
    elif len(r.stderr.strip().splitlines()) != 1 or "damaged" not in r.stderr:
        fault.crash += 1
        fault.notes.append(f"not one clear line: {r.stderr.strip()[-200:]!r}")
    else:
        fault.detail = "refused in one line"
        if db.read_bytes() != damaged:
            fault.lost += 1
            fault.notes.append("the damaged file was written to")
    if r.returncode != 0:
        restored = vt("restore", root)
        if why := crashed(restored):
            fault.crash += 1
            fault.notes.append(f"restore: {why}")
        elif restored.returncode != 0 or vt("clips", "list", root).returncode != 0:
            fault.stuck += 1
            fault.notes.append(f"not restored: {restored.stderr.strip()[-200:]}")
    shutil.rmtree(root, ignore_errors=True)
    return fault


# --- the campaign --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=4, help="kill -9 faults per command (5 commands)")
    ap.add_argument("--corrupt", type=int, default=8, help="corrupt cache file faults")
    ap.add_argument("--db-pages", type=int, default=6, help="damaged database page faults")
    ap.add_argument("--no-disk-full", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="vidtrain-faults-"))
    faults: list[Fault] = []
    try:
        base, videos, extra, labels = build_base(work)
        # How long each command takes undisturbed: kills land anywhere from its start to its end.
        typical = {}
        for command in ("import", "features", "train", "predict", "import-labels"):
            probe = work / f"time-{command}"
            shutil.copytree(base, probe)
            given = {"import": [probe, *extra], "import-labels": [probe, labels]}.get(command)
            if command == "features":
                shutil.rmtree(probe / "cache" / "features")
            started = time.monotonic()
            vt(command, *(given or [probe, *JOB_ARGS[command]]))
            typical[command] = time.monotonic() - started
            shutil.rmtree(probe)
        print("typical durations:", {k: round(v, 1) for k, v in typical.items()}, flush=True)
        for command in ("import", "features", "train", "predict", "import-labels"):
            for _ in range(args.kills):
                faults.append(kill_fault(base, work, command, extra if command == "import" else videos, labels,
                                         rng, typical))  # fmt: skip
                print(_line(faults[-1]), flush=True)
        if not args.no_disk_full:
            for fault in disk_full_faults(base, work, extra, labels):
                faults.append(fault)
                print(_line(fault), flush=True)
        for _ in range(args.corrupt):
            faults.append(corrupt_fault(base, work, rng))
            print(_line(faults[-1]), flush=True)
        for _ in range(args.db_pages):
            faults.append(db_page_fault(base, work, rng))
            print(_line(faults[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    counted = [f for f in faults if "skipped" not in f.notes]
    summary = {
        "faults": len(counted), "lost": sum(f.lost for f in counted), "stuck": sum(f.stuck for f in counted),
        "crashes": sum(f.crash for f in counted), "bad": sum(not f.ok for f in counted),
        "by_kind": {k: sum(1 for f in counted if f.kind == k) for k in ("kill", "disk-full", "corrupt", "db-page")},
        "seconds": round(time.monotonic() - t0, 1), "cpu": cpu_name(), "cores": os.cpu_count(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "seed": args.seed,
    }  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "faults.json").write_text(json.dumps({"summary": summary, "faults": [asdict(f) for f in faults]},
                                                indent=1))  # fmt: skip
    print(json.dumps(summary, indent=1))
    return 0 if summary["bad"] == 0 else 1


def _line(f: Fault) -> str:
    verdict = "ok" if f.ok else f"LOST {f.lost} STUCK {f.stuck} CRASH {f.crash}"
    notes = f"  {'; '.join(f.notes)[:300]}" if f.notes else ""
    return f"{f.kind:9} {f.target:28} {f.detail[:60]:60} {verdict}{notes}"


if __name__ == "__main__":
    sys.exit(main())
