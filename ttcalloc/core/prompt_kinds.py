"""What the kinds of prompt say: do a question's chain-of-thought and program answers agree?

When a model's samples come from prompts of two kinds, text (chain of thought) and program
(program of thought, whose program is run for the answer), an answer both kinds lead with is
more often right than one that leads within a kind only (the "mixture of thought" of Yue et al.
2024).  :func:`kind_features` describes each prefix of a replay's samples by that agreement;
the learned cascade adds them to its state when its samples have both kinds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ttcalloc.core.replays import Replays

KIND_FEATURES = ("program_share", "kinds_agree", "lead_share_text", "lead_share_program")
_CHUNK = 4_000_000  # cells of the one-hot vote counts computed at once


def all_have_both(reps: Sequence[Replays]) -> bool:
    """Whether every model's replayed samples come from prompts of both kinds (a run draws
    every model with the same variants)."""
    return all(r.kind is not None and (r.kind == 0).any() and (r.kind == 1).any() for r in reps)


def kind_features(rep: Replays) -> NDArray[np.float64]:
    """``(P, R, T, 4)`` after each prefix: the share of its samples from program prompts;
    1 when an answer leads (alone or tied) among the text samples and among the program samples,
    0 when none does (NaN until both kinds have an answer); the share of the text samples and of
    the program samples held by an answer that leads overall (the largest, over tied leaders;
    NaN while a kind has no sample).  Every definition treats all answers alike, so no answer's
    label (which one is right) can leak in.
    All NaN when the replays carry no kinds."""
    p, r, t = rep.ids.shape
    out = np.full((p, r, t, len(KIND_FEATURES)), np.nan)
    if rep.kind is None:
        return out
    kind, ids = rep.kind, rep.ids
    j = np.arange(1, t + 1, dtype=np.float64)
    n_text = np.cumsum(kind == 0, axis=2)
    n_prog = np.cumsum(kind == 1, axis=2)
    out[..., 0] = n_prog / j
    clusters = max(int(ids.max()) + 1, 1)
    step = max(1, _CHUNK // max(1, r * t * clusters))
    for lo in range(0, p, step):
        part, kd = ids[lo : lo + step], kind[lo : lo + step]
        onehot = part[..., None] == np.arange(clusters)  # abstentions and padding match none
        text = np.cumsum(onehot & (kd == 0)[..., None], axis=2, dtype=np.int32)
        prog = np.cumsum(onehot & (kd == 1)[..., None], axis=2, dtype=np.int32)
        total = text + prog
        # label-free: every answer tied for a lead counts (an argmax would favour cluster 0,
        # the correct answer)
        leads = (total == total.max(axis=3, keepdims=True)) & (total > 0)
        top_t, top_p = text.max(axis=3, keepdims=True), prog.max(axis=3, keepdims=True)
        both = (top_t[..., 0] > 0) & (top_p[..., 0] > 0)
        shared = ((text == top_t) & (prog == top_p) & (text > 0) & (prog > 0)).any(axis=3)
        out[lo : lo + step, ..., 1] = np.where(both, shared.astype(np.float64), np.nan)
        in_text = np.where(leads, text, 0).max(axis=3)
        in_prog = np.where(leads, prog, 0).max(axis=3)
        nt, npg = n_text[lo : lo + step], n_prog[lo : lo + step]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[lo : lo + step, ..., 2] = np.where(nt > 0, in_text / np.maximum(nt, 1), np.nan)
            out[lo : lo + step, ..., 3] = np.where(npg > 0, in_prog / np.maximum(npg, 1), np.nan)
    return out
