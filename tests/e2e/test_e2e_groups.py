"""`vidtrain videos`: listing videos with their source group and clip count, setting the group of one or several
videos by id, path or file name, taking it away, one-line errors that change nothing; and the groups through
`export labels` / `import-labels`. The command runs in this process (``cli.main``) on a real project of real videos."""

from __future__ import annotations

import csv
import io
import json

import pytest
from videogen import write_pyav

from vidtrain_gui.cli import main
from vidtrain_gui.core import videos as V
from vidtrain_gui.core.project import Project


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    """Three short videos (distinct content), two of them called b.mp4 in different folders."""
    folder = tmp_path_factory.mktemp("footage")
    (folder / "cam1").mkdir()
    (folder / "cam2").mkdir()
    write_pyav(folder / "cam1" / "a.mp4", 20, gop=10)
    write_pyav(folder / "cam1" / "b.mp4", 25, gop=10, motion="left")
    write_pyav(folder / "cam2" / "b.mp4", 30, gop=10)
    return folder


@pytest.fixture
def vt(capsys):
    """``vt(*args)`` -> (exit code, stdout, stderr) of one `vidtrain` command."""

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def proj(tmp_path, footage, vt):
    proj = tmp_path / "proj"
    assert vt("init", proj)[0] == 0
    paths = [footage / "cam1" / "a.mp4", footage / "cam1" / "b.mp4", footage / "cam2" / "b.mp4"]
    assert vt("import", proj, *paths, "--no-thumbnails")[0] == 0
    return proj


def _groups(proj) -> dict[int, str | None]:
    with Project.open(proj, readonly=True) as p:
        return {v.id: v.group_name for v in V.list_videos(p)}


def _listed(vt, proj) -> list[dict]:
    code, out, _ = vt("videos", "list", proj, "--json")
    assert code == 0
    return json.loads(out)


def test_list_shows_each_video_with_frames_fps_group_status_and_clips(tmp_path, vt, proj, footage):
    assert vt("init", tmp_path / "empty")[0] == 0
    assert vt("videos", "list", tmp_path / "empty") == (0, "no videos\n", "")
    vt("classes", "add", proj, "walk")
    assert vt("clips", "add", proj, "--video", 1, "--start", 0, "--end", 10, "--class", "walk")[0] == 0
    assert vt("clips", "add", proj, "--video", 1, "--start", 10, "--end", 20)[0] == 0
    rows = _listed(vt, proj)
    assert [(r["id"], r["name"], r["frames"], r["fps"], r["group"], r["status"], r["clips"]) for r in rows] == [
        (1, "a.mp4", 20, 25.0, None, "ok", 2),
        (2, "b.mp4", 25, 25.0, None, "ok", 0),
        (3, "b.mp4", 30, 25.0, None, "ok", 0),
    ]
    assert rows[2]["path"] == str(footage / "cam2" / "b.mp4")
    code, out, _ = vt("videos", "list", proj)
    assert code == 0 and out.splitlines()[0] == "1\ta.mp4\t20 frames\t25 fps\tgroup=-\tok\tclips=2"


def test_set_group_by_id_path_or_name_for_one_or_several_videos_and_none(vt, proj, footage):
    code, out, err = vt("videos", "set-group", proj, "a.mp4", "cage 1")  # a unique file name
    assert (code, err) == (0, "") and out == "[1] a.mp4: in group 'cage 1'\n"
    assert _groups(proj) == {1: "cage 1", 2: None, 3: None}
    # A path, then several at once (an id and a path) with --group; the answer lists each video.
    assert vt("videos", "set-group", proj, footage / "cam1" / "b.mp4", "cage 1")[0] == 0
    code, out, _ = vt("videos", "set-group", proj, "--videos", 3, footage / "cam1" / "a.mp4", "--group", "cage 2",
                      "--json")  # fmt: skip
    assert code == 0
    assert json.loads(out) == {"group": "cage 2", "videos": [{"id": 3, "name": "b.mp4", "group": "cage 2"},
                                                            {"id": 1, "name": "a.mp4", "group": "cage 2"}]}  # fmt: skip
    assert [r["group"] for r in _listed(vt, proj)] == ["cage 2", "cage 1", "cage 2"]
    assert vt("videos", "list", proj)[1].splitlines()[1] == "2\tb.mp4\t25 frames\t25 fps\tgroup=cage 1\tok\tclips=0"
    # VIDEO plus --videos, and --none takes them out.
    code, out, _ = vt("videos", "set-group", proj, 1, "--videos", 2, "--none")
    assert code == 0 and out.splitlines() == ["[1] a.mp4: without a group", "[2] b.mp4: without a group"]
    assert _groups(proj) == {1: None, 2: None, 3: "cage 2"}
    assert vt("videos", "set-group", proj, 3, "  cage   3 ")[0] == 0  # white space folded
    assert _groups(proj)[3] == "cage 3"


@pytest.mark.parametrize(
    "args, message",
    [
        (["nope.mp4", "cam"], "no video 'nope.mp4'"),
        (["b.mp4", "cam"], "'b.mp4' names 2 videos"),
        (["--videos", "1", "2", "99", "--group", "cam"], "no video '99'"),  # one unknown: none is changed
        (["1", ""], "the group name is empty"),
        (["1", "   "], "the group name is empty"),
        (["--videos", "1", "2", "--group", ""], "the group name is empty"),
        (["1"], "no group given"),
        (["--videos", "1", "2", "cam"], "no group given"),  # cam went to --videos
        ([], "name a video"),
        (["1", "cam", "--none"], "give the group once"),
        (["1", "cam", "--group", "cam"], "give the group once"),
        (["1", "bad\x1bname"], "control characters"),
    ],
)
def test_set_group_errors_are_one_line_and_change_nothing(vt, proj, args, message):
    assert vt("videos", "set-group", proj, 2, "before")[0] == 0
    code, out, err = vt("videos", "set-group", proj, *args)
    assert code == 1 and out == ""
    assert err.startswith("vidtrain: error: ") and err.count("\n") == 1 and message in err, err
    assert _groups(proj) == {1: None, 2: "before", 3: None}


def test_group_and_none_together_is_a_usage_error(vt, proj):
    with pytest.raises(SystemExit) as exit_:
        vt("videos", "set-group", proj, 1, "--group", "cam", "--none")
    assert exit_.value.code == 2


def test_groups_travel_through_exported_and_imported_labels(tmp_path, vt, proj, footage):
    vt("classes", "add", proj, "walk")
    vt("clips", "add", proj, "--video", 1, "--start", 0, "--end", 10, "--class", "walk")
    vt("clips", "add", proj, "--video", 3, "--start", 0, "--end", 10)
    vt("videos", "set-group", proj, 1, "=cage 1")  # a formula-looking name: escaped in the CSV
    out = tmp_path / "labels.csv"
    assert vt("export", "labels", proj, "--out", out)[0] == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["group"] for r in rows] == ["'=cage 1", ""]

    other = tmp_path / "other"
    vt("init", other)
    vt("import", other, footage / "cam1" / "a.mp4", footage / "cam2" / "b.mp4", "--no-thumbnails")
    vt("videos", "set-group", other, 2, "kept")  # the file gives video 2 no group: it keeps this one
    code, stdout, _ = vt("import-labels", other, out, "--json")
    assert code == 0
    summary = json.loads(stdout)
    assert summary["added"] == 2 and summary["groups_set"] == [[str(footage / "cam1" / "a.mp4"), "=cage 1"]]
    assert _groups(other) == {1: "=cage 1", 2: "kept"}

    clash = tmp_path / "clash.csv"
    clash.write_text("video,start_frame,end_frame,class,group\na.mp4,0,5,,x\na.mp4,5,9,,y\n")
    code, stdout, err = vt("import-labels", other, clash)
    assert code == 1 and err.count("\n") == 1 and "a.mp4 is given two source groups" in err
    assert "nothing was imported" in err and _groups(other) == {1: "=cage 1", 2: "kept"}
