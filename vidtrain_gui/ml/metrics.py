"""Classification metrics and class weights, the same for training, out-of-fold and prediction reports."""

from __future__ import annotations

import numpy as np
import torch


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix (rows = true)."""
    c = len(class_names)
    conf = np.zeros((c, c), dtype=np.int64)
    np.add.at(conf, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    per_class, f1s = {}, []
    for k, name in enumerate(class_names):
        tp = int(conf[k, k])
        pred_k, true_k = int(conf[:, k].sum()), int(conf[k].sum())
        p = tp / pred_k if pred_k else 0.0
        r = tp / true_k if true_k else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class[name] = {"precision": p, "recall": r, "f1": f1, "support": true_k}
        if true_k:  # a class absent from this set says nothing about the model
            f1s.append(f1)
    total = int(conf.sum())
    return {
        "acc": float(np.trace(conf)) / total if total else 0.0,
        "macro_f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per_class,
        "confusion": conf.tolist(),
    }


def balanced_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class weights for the loss: inverse frequency in ``y``, normalised so a balanced set gets 1 everywhere."""
    counts = torch.bincount(y.cpu(), minlength=num_classes).double()
    return (counts.sum() / (num_classes * counts.clamp_min(1))).float()


__all__ = ["balanced_weights", "classification_metrics"]
