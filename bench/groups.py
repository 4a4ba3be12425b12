"""How well grouping by look finds the sources of fight-dev's videos (ml/trainset.py ``near_duplicate_groups``).

The product groups the videos a user put in no source group by their look (same frame size and rate, similar mean
features), so near-duplicates stay on one side of the validation split. Here the manifest's ``group`` (the true
source) is hidden from the grouping and used to score it: of the video pairs from one source, the share the
grouping puts apart (a leak into validation: lower is better), and of the pairs it puts together, the share that
are of one source (precision), for each level of NEAR_DUPLICATE_LEVELS and a few other thresholds.

    .venv/bin/python bench/groups.py

Then what it is for: the product's own validation score when the user set no groups, on a copy of the project with
its groups cleared, five seeds: one group per video (before) against grouping by look (now), next to what
bench/generalise.py measures on held-out sources (balanced accuracy about 0.73 for the default).

Needs bench/train.py's project (bench/out/fight-dev) with its features cached.
"""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from train import DATA, OUT, build_project  # noqa: E402

from vidtrain_gui.core import videos as V  # noqa: E402
from vidtrain_gui.core.project import Project  # noqa: E402
from vidtrain_gui.jobs.runner import run_job  # noqa: E402
from vidtrain_gui.ml import trainset  # noqa: E402
from vidtrain_gui.ml.backbones import get_backbone  # noqa: E402
from vidtrain_gui.ml.rows import video_rows  # noqa: E402
from vidtrain_gui.ml.trainset import NEAR_DUPLICATE_LEVELS, near_duplicate_groups  # noqa: E402


def score(videos, truth: dict[int, str], found: dict[int, str]) -> tuple[float, float, int]:
    ids = [v.id for v in videos]
    same = np.array([[truth[a] == truth[b] for b in ids] for a in ids])
    together = np.array([[found[a] == found[b] for b in ids] for a in ids])
    upper = np.triu(np.ones_like(same), 1).astype(bool)
    split = (same & ~together & upper).sum() / max(1, (same & upper).sum())
    precision = (same & together & upper).sum() / max(1, (together & upper).sum())
    return float(split), float(precision), len(set(found.values()))


def main() -> int:
    if not (DATA / "manifest.csv").exists():
        print(f"no data at {DATA}; nothing to do")
        return 0
    p = build_project(DATA, OUT / "fight-dev")
    key = get_backbone("efficientnet_lite0").key("default")
    videos = V.list_videos(p)
    truth = {v.id: v.group_name for v in videos}
    means = {}
    for v in videos:
        loaded = video_rows(p, v, key, 8.0, False)
        if loaded is not None:
            means[v.id] = loaded[0].mean(axis=0)
    loose = [v for v in videos if v.id in means]
    print(f"{len(loose)} videos, {len(set(truth.values()))} sources")
    print("| same size and rate | similarity >= | groups | same-source pairs split | pairs together of one source |")
    print("|---|---|---|---|---|")
    split, precision, n = score(loose, truth, {v.id: str(v.id) for v in loose})
    print(f"| (no grouping: one group per video) | | {n} | {split:.2f} | |")
    levels = list(NEAR_DUPLICATE_LEVELS) + [(True, 0.2), (False, 0.3), (False, 0.4)]
    for same_size, threshold in levels:
        found = near_duplicate_groups(loose, means, same_size, threshold)
        split, precision, n = score(loose, truth, found)
        mark = " (a product level)" if (same_size, threshold) in NEAR_DUPLICATE_LEVELS else ""
        print(f"| {'yes' if same_size else 'no'} | {threshold}{mark} | {n} | {split:.2f} | {precision:.2f} |")
    p.close()
    validation_without_groups()
    return 0


def validation_without_groups(seeds: int = 5) -> None:
    from vidtrain_gui.ml.train import train

    copy = OUT / "groups-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(OUT / "fight-dev", copy, ignore=shutil.ignore_patterns("runs", "backups"))
    p = Project.open(copy)
    for v in V.list_videos(p):
        V.set_video_group(p, v.id, None)
    levels = trainset.NEAR_DUPLICATE_LEVELS
    print()
    print("| validation split (no groups set) | val accuracy | val balanced accuracy | val clips |")
    print("|---|---|---|---|")
    for label, use in (("one group per video (before)", ()), ("grouped by look (now)", levels)):
        trainset.NEAR_DUPLICATE_LEVELS = use
        acc, bal, n = [], [], []
        for seed in range(seeds):
            run = run_job(p, "train", {}, lambda ctx, s=seed: train(ctx, device="cpu", seed=s),
                          stdout=io.StringIO(), install_signals=False)  # fmt: skip
            m = run.metrics
            acc.append(m["val_acc"])
            bal.append(float(np.mean([c["recall"] for c in m["per_class"].values()])))
            n.append(m["n_val"])
        print(f"| {label} | {np.mean(acc):.3f} ± {np.std(acc):.3f} | {np.mean(bal):.3f} ± {np.std(bal):.3f} | "
              f"{np.mean(n):.0f} |")  # fmt: skip
    trainset.NEAR_DUPLICATE_LEVELS = levels
    p.close()
    shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
