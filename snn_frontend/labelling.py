"""Neuron labelling and prediction (Diehl & Cook 2015).

A neuron is assigned the class for which its mean spike count over the
labelling set is highest (never-firing neurons stay unassigned, -1). A sample
is predicted as the class whose assigned neurons have the highest mean spike
count (ties: the lowest class).
"""
from __future__ import annotations

import numpy as np

__all__ = ["assign_labels", "predict"]


def assign_labels(responses: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """responses (samples, neurons) spike counts -> class per neuron (-1 if silent)."""
    responses = np.asarray(responses)  # kept in its (small integer) dtype: 60k x N stays small
    labels = np.asarray(labels)
    if responses.shape[0] != labels.shape[0]:
        raise ValueError("responses and labels must have the same number of samples")
    rates = np.zeros((n_classes, responses.shape[1]))
    for c in range(n_classes):
        sel = labels == c
        if sel.any():
            rates[c] = responses[sel].mean(axis=0, dtype=np.float64)
    assignments = rates.argmax(axis=0)
    assignments[rates.max(axis=0) <= 0] = -1
    return assignments.astype(np.int64)


def predict(responses: np.ndarray, assignments: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean response of each class's neurons, argmax per sample."""
    responses = np.asarray(responses)
    scores = np.zeros((responses.shape[0], n_classes))
    for c in range(n_classes):
        sel = np.flatnonzero(assignments == c)
        if len(sel):
            scores[:, c] = responses[:, sel].mean(axis=1, dtype=np.float64)
    return scores.argmax(axis=1)
