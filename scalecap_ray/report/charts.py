"""The report's charts: matplotlib figures rendered to inline SVG (no files, no network).

Figures are made with matplotlib's object API (`Figure`), not pyplot: no global state,
no backend switched in the caller's process.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue: the SVG goes inline


def _figure():
    fig = Figure(figsize=(4.2, 2.6), dpi=100)
    return fig, fig.subplots()


def caption_lengths(before: list[int], after: list[int]) -> str:
    """Words per caption: the initial caption against the final one."""
    fig, ax = _figure()
    values = before + after
    bins = min(20, max(values, default=1) + 1)
    ax.hist([before, after], bins=bins, label=["initial caption", "final caption"])
    ax.set_xlabel("words")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    ax.set_title("Caption length", fontsize=10)
    return _svg(fig)


def sentence_scores(scores: list[float], threshold: float, label: str) -> str:
    """Histogram of the verify scores, with the threshold that decides kept/dropped."""
    fig, ax = _figure()
    ax.hist(scores, bins=20)
    ax.axvline(threshold, color="crimson", linestyle="--", label=f"{label} = {threshold:g}")
    ax.set_xlabel("sentence score")
    ax.set_ylabel("sentences")
    ax.legend(fontsize=8)
    ax.set_title("Sentence verification", fontsize=10)
    return _svg(fig)


def questions_per_image(counts: list[int]) -> str:
    fig, ax = _figure()
    ax.hist(counts, bins=range(0, max(counts, default=0) + 2), align="left", rwidth=0.8)
    ax.set_xlabel("object questions")
    ax.set_ylabel("images")
    ax.set_title("Questions per image", fontsize=10)
    return _svg(fig)
