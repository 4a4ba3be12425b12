"""The `vidtrain` command as a user runs it: a real process, a real project folder, real videos."""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from videogen import write_pyav


def vt(*args, check=True):
    r = subprocess.run([sys.executable, "-m", "vidtrain_gui.cli", *map(str, args)], capture_output=True, text=True)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_cli_round_trip(tmp_path):
    proj = tmp_path / "proj"
    write_pyav(tmp_path / "one.mp4", 50, gop=10)
    (tmp_path / "junk.mp4").write_text("nope")
    vt("init", proj)
    r = vt("import", proj, tmp_path / "one.mp4", tmp_path / "junk.mp4", "--json", check=False)
    assert r.returncode == 3  # partial: one refused
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["status"] for x in lines] == ["imported", "refused"]
    vt("classes", "add", proj, "walk")
    vt("classes", "add", proj, "run", "--color", "#ff0000", "--hotkey", "5")
    classes = json.loads(vt("classes", "list", proj, "--json").stdout)
    assert [(c["name"], c["hotkey"]) for c in classes] == [("walk", "1"), ("run", "5")]
    vt("clips", "add", proj, "--video", "one.mp4", "--start", 0, "--end", 20, "--class", "walk")
    r = vt("clips", "add", proj, "--video", "1", "--start", 10, "--end", 30, "--class", "run")
    assert "overlaps" in r.stderr
    clips = json.loads(vt("clips", "list", proj, "--json").stdout)
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [(0, 20), (10, 30)]
    vt("clips", "set-class", proj, clips[0]["id"], "run")
    vt("clips", "rm", proj, clips[1]["id"])
    r = vt("classes", "rm", proj, "run", check=False)
    assert r.returncode == 1 and "--untag" in r.stderr and r.stderr.count("\n") == 1
    vt("classes", "rm", proj, "run", "--untag")
    info = json.loads(vt("info", proj, "--json").stdout)
    assert info["clips"] == 1 and [c["name"] for c in info["classes"]] == ["walk"]
    assert info["videos"][0]["frame_count"] == 50

    # Labels out and into a second project with the same video: the same clips; a bad file changes nothing.
    vt("clips", "add", proj, "--video", "1", "--start", 30, "--end", 50, "--class", "walk")  # 0-20 is untagged now
    vt("export", "labels", proj, "--out", tmp_path / "labels.csv")
    rows = (tmp_path / "labels.csv").read_text().splitlines()
    assert rows[0].startswith("video,start_frame,end_frame,class,start_s,end_s") and len(rows) == 3
    assert rows[1].endswith(",0,20,,0.0,0.8,manual,")  # untagged: an empty class; no source group
    assert rows[2].endswith(",30,50,walk,1.2,2.0,manual,")  # seconds from the frame index (25 fps)
    other = tmp_path / "other"
    vt("init", other)
    vt("import", other, tmp_path / "one.mp4")
    summary = json.loads(vt("import-labels", other, tmp_path / "labels.csv", "--json").stdout)
    assert summary == {"added": 2, "already_there": 0, "classes_created": ["walk"], "warnings": [], "groups_set": []}
    assert vt("export", "labels", other).stdout == (tmp_path / "labels.csv").read_text()
    (tmp_path / "bad.csv").write_text("video,start_frame,end_frame,class\none.mp4,0,99,walk\n")
    r = vt("import-labels", other, tmp_path / "bad.csv", check=False)
    assert r.returncode == 1 and "line 2" in r.stderr and "nothing was imported" in r.stderr


def test_cli_errors_are_one_line_and_nonzero(tmp_path):
    cases = [
        ("info", tmp_path / "nowhere"),
        ("info", tmp_path),
        ("clips", "add", tmp_path, "--video", "x", "--start", 0, "--end", 1),
    ]
    for args in cases:
        r = vt(*args, check=False)
        assert r.returncode == 1, args
        assert r.stderr.startswith("vidtrain: error: ") and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr
    proj = tmp_path / "p"
    vt("init", proj)
    r = vt("init", proj, check=False)
    assert r.returncode == 1 and "already" in r.stderr
    r = vt("clips", "add", proj, "--video", "nope.mp4", "--start", 0, "--end", 5, check=False)
    assert r.returncode == 1 and "no video" in r.stderr
    r = vt("classes", "add", proj, "a", "--color", "red", check=False)
    assert r.returncode == 1
    assert vt("bogus", check=False).returncode == 2


def test_cli_features_job_writes_events_and_cache(tmp_path):
    proj = tmp_path / "proj"
    write_pyav(tmp_path / "f.mp4", 50, gop=10)
    vt("init", proj)
    vt("import", proj, tmp_path / "f.mp4")
    r = vt("features", proj, "--fps", "4", "--json")
    events = [json.loads(x) for x in r.stdout.splitlines()]
    assert events[0]["type"] == "started" and events[-1]["type"] == "done"
    assert events[-1]["metrics"]["computed"] == 1 and events[-1]["metrics"]["samples"] == 8
    assert events[-1]["metrics"]["motion_computed"] == 1 and events[-1]["metrics"]["motion_samples"] == 8
    run_id = events[-1]["run_id"]
    assert (proj / "runs" / run_id / "events.jsonl").read_text().count("\n") == len(events)
    assert len(list((proj / "cache" / "features").glob("*/*.npy"))) == 2  # backbone features, motion descriptors
    runs = json.loads(vt("runs", "list", proj, "--json").stdout)
    assert [(x["kind"], x["status"]) for x in runs] == [("features", "done")]
    again = [json.loads(x) for x in vt("features", proj, "--fps", "4", "--json").stdout.splitlines()]
    assert again[-1]["metrics"]["cached"] == 1 and again[-1]["metrics"]["computed"] == 0
    assert again[-1]["metrics"]["motion_cached"] == 1
    r = vt("features", proj, "--device", "cuda", check=False)
    assert r.returncode == 1 and "error" in r.stderr


def test_cli_train_refuses_a_bad_mode_or_unfreeze_before_any_work(tmp_path):
    vt("init", tmp_path / "proj")
    for bad in (["--mode", "slow"], ["--mode", "finetune", "--unfreeze", "some"]):
        r = vt("train", tmp_path / "proj", *bad, check=False)
        assert r.returncode == 2 and "error: argument --" in r.stderr, r.stderr
    assert not list((tmp_path / "proj" / "runs").iterdir())


def test_cli_train_job_end_to_end(tmp_path):
    proj = tmp_path / "proj"
    vt("init", proj)
    for k, motion in enumerate(["left", "right", "left", "right"]):
        write_pyav(tmp_path / f"{motion}{k}.mp4", 75 + k, gop=15, motion=motion)  # distinct files, not duplicates
    vt("import", proj, *[tmp_path / f"{m}{k}.mp4" for k, m in enumerate(["left", "right", "left", "right"])])
    r = vt("train", proj, "--json", check=False)
    assert r.returncode == 1 and "at least two classes" in r.stdout.lower() + r.stderr.lower()
    vt("classes", "add", proj, "left")
    vt("classes", "add", proj, "right")
    for vid, motion in enumerate(["left", "right", "left", "right"], 1):
        for start in (0, 25, 50):
            vt("clips", "add", proj, "--video", vid, "--start", start, "--end", start + 25, "--class", motion)
    r = vt("train", proj, "--head", "gru", "--epochs", "40", "--fps", "8", "--json")
    events = [json.loads(x) for x in r.stdout.splitlines()]
    assert [e["type"] for e in events if e["type"] == "epoch"]
    config = events[0]["config"]  # what was not given is left to the mode's own defaults
    assert config["mode"] == "fast" and config["epochs"] == 40 and "lr" not in config and "world_size" not in config
    done = events[-1]
    assert done["type"] == "done" and done["metrics"]["class_names"] == ["left", "right"]
    assert (proj / "runs" / done["run_id"] / "best.pt").exists()
    runs = json.loads(vt("runs", "list", proj, "--json").stdout)
    train_run = [x for x in runs if x["kind"] == "train" and x["status"] == "done"][0]
    assert train_run["classes"] == ["left", "right"] and train_run["artifacts"]["checkpoint"] == "best.pt"
    # Fine-tune mode through the same command (tiny: 2 frames, 1 epoch, the last block), and --json before the
    # subcommand is honoured too.
    r = vt(
        "--json",
        "train",
        proj,
        "--mode",
        "finetune",
        "--frames",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--unfreeze",
        "1",
    )
    events = [json.loads(x) for x in r.stdout.splitlines()]
    assert events[0]["config"]["mode"] == "finetune" and events[0]["config"]["unfreeze"] == 1
    assert [e["epoch"] for e in events if e["type"] == "epoch"] == [1] and events[-1]["status"] == "done"
    ck = torch.load(proj / "runs" / events[-1]["run_id"] / "best.pt", weights_only=True)
    assert ck["config"]["mode"] == "finetune" and "backbone_state_dict" in ck
