"""Windows to segments (core/segments.py): smoothing, spans, thresholds and the minimum length, on hand-made
probabilities whose right answer is known."""

from __future__ import annotations

import pytest

from vidtrain_gui.core.errors import ValidationError
from vidtrain_gui.core.segments import UNASSIGNED, Postprocess, segment_windows, smooth, spans, viterbi


def _windows(n, length=20, stride=10):
    starts = [k * stride for k in range(n)]
    return starts, [s + length for s in starts]


def _onehot(labels, sure=0.9):
    return [[sure if c == y else 1 - sure for c in range(2)] for y in labels]


def test_spans_give_each_window_the_frames_nearest_its_centre():
    assert spans(*_windows(3)) == [0, 15, 25, 40]
    assert spans([0], [7]) == [0, 7]


def test_smoothing_is_a_centred_moving_average_shorter_at_the_ends():
    out = smooth([[0.0], [3.0], [6.0], [9.0]], 3)
    assert out == [[1.5], [3.0], [6.0], [7.5]]
    assert smooth([[0.2, 0.8]], 5) == [[0.2, 0.8]]


def test_a_one_window_flicker_is_smoothed_away_and_boundaries_stay_within_a_stride():
    labels = [0] * 10 + [1] + [0] * 5 + [1] * 10
    starts, ends = _windows(len(labels))
    segs = segment_windows(starts, ends, _onehot(labels), smoothing=3)
    assert [s.class_index for s in segs] == [0, 1]
    assert segs[0].start_frame == 0 and segs[-1].end_frame == ends[-1]
    true_change = starts[16] + 10  # the centre of the first window of class 1 after the flicker
    assert abs(segs[0].end_frame - true_change) <= 10
    assert 0.5 < segs[1].confidence <= 0.9 and len(segs[1].probs) == 2


def test_thresholds_leave_uncertain_stretches_unassigned():
    probs = [[0.9, 0.1]] * 5 + [[0.55, 0.45]] * 5 + [[0.1, 0.9]] * 5
    starts, ends = _windows(len(probs))
    segs = segment_windows(starts, ends, probs, smoothing=1, thresholds=[0.8, 0.8])
    assert [s.class_index for s in segs] == [0, 1]
    assert segs[0].end_frame < segs[1].start_frame  # the gap is not a segment
    assert UNASSIGNED == -1


def test_short_segments_join_their_longer_neighbour_and_equal_neighbours_merge():
    labels = [0] * 8 + [1] * 2 + [0] * 8 + [1] * 12
    starts, ends = _windows(len(labels))
    segs = segment_windows(starts, ends, _onehot(labels), smoothing=1, min_length=40)
    assert [s.class_index for s in segs] == [0, 1]
    assert [(s.start_frame, s.end_frame) for s in segs] == [(0, 185), (185, ends[-1])]
    # A minimum longer than the video leaves the timeline as it is.
    assert len(segment_windows(starts, ends, _onehot(labels), smoothing=1, min_length=10_000)) == 4


def test_postprocess_settings_are_checked_and_round_trip():
    post = Postprocess(smoothing=5, min_segment_s=1.5, thresholds={"a": 0.7})
    assert Postprocess.from_dict(post.to_dict()) == post
    assert post.threshold_list(["b", "a"]) == [0.0, 0.7]
    with pytest.raises(ValidationError, match="no class 'a'"):
        post.threshold_list(["b"])
    for bad in ({"smoothing": 0}, {"min_segment_s": -1}, {"thresholds": {"a": 1.5}}):
        with pytest.raises(ValidationError):
            Postprocess(**bad)
    with pytest.raises(ValidationError, match="unknown"):
        Postprocess.from_dict({"smooth": 3})


def _noisy(labels, flip_every=4, sure=0.7):
    """Probabilities that favour the true class, except every ``flip_every``-th window favours the other."""
    out = []
    for k, y in enumerate(labels):
        p = 1 - sure if k % flip_every == 1 else sure
        out.append([p, 1 - p] if y == 0 else [1 - p, p])
    return out


def test_a_switch_penalty_keeps_bouts_whole_where_argmax_flickers():
    labels = [0] * 40 + [1] * 40 + [0] * 40
    starts, ends = _windows(len(labels), length=40, stride=10)  # four windows per window length
    flicker = segment_windows(starts, ends, _noisy(labels), smoothing=1)
    assert len(flicker) > 20
    segs = segment_windows(starts, ends, _noisy(labels), smoothing=1, switch_penalty=1.0)
    assert [s.class_index for s in segs] == [0, 1, 0]
    bounds = spans(starts, ends)
    for seg, true_start in zip(segs[1:], (bounds[40], bounds[80])):
        assert abs(seg.start_frame - true_start) <= 10  # within one stride
    # A penalty larger than a bout's whole evidence keeps one class for the whole video.
    assert len(segment_windows(starts, ends, _noisy(labels), smoothing=1, switch_penalty=20.0)) == 1


def test_the_switch_penalty_does_not_depend_on_the_stride():
    """Evidence is counted per window length, so halving the stride (twice the windows) changes nothing."""
    labels = [0] * 30 + [1] * 6 + [0] * 30  # a short bout of 1.5 window lengths
    coarse = segment_windows(*_windows(len(labels), 40, 10), _onehot(labels, 0.8), smoothing=1, switch_penalty=1.0)
    fine_labels = [y for y in labels for _ in range(2)]
    fine = segment_windows(*_windows(len(fine_labels), 40, 5), _onehot(fine_labels, 0.8), smoothing=1,
                           switch_penalty=1.0)  # fmt: skip
    assert [s.class_index for s in coarse] == [s.class_index for s in fine]


def test_viterbi_respects_thresholds_and_leaves_unassigned_only_where_no_class_passes():
    probs = [[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 4 + [[0.1, 0.9]] * 4
    path = viterbi(probs, [1.0] * len(probs), 0.5, thresholds=[0.8, 0.8])
    assert path == [0] * 4 + [UNASSIGNED] * 4 + [1] * 4
    # Without thresholds every span gets a class.
    assert UNASSIGNED not in viterbi(probs, [1.0] * len(probs), 0.5)


def test_the_switch_penalty_is_a_stored_setting_with_a_range():
    post = Postprocess.from_dict({"smoothing": 1, "switch_penalty": 2.5})
    assert post.to_dict()["switch_penalty"] == 2.5
    assert Postprocess.from_dict({"smoothing": 3}).switch_penalty == 0.0  # settings stored before it: argmax
    for bad in (-1, float("nan"), 1000):
        with pytest.raises(ValidationError, match="switch penalty"):
            Postprocess(switch_penalty=bad)
