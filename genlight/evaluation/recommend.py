"""The recommended outlier score, chosen without the outlier set it is reported on.

Leave-one-outlier-set-out over genlight's own sets: for each set ``s``, the score is chosen on the
AUROCs of the OTHER sets only (:func:`choose_score`), and the recommended AUROC on ``s`` is that
score's there (:func:`leave_one_out`). The score recommended for data genlight never saw is
:func:`choose_score` over every set. The rule (docs/evaluation.md): among the scores never more than
``tolerance`` AUROC below the reference ``nll`` on any of the sets used, the highest mean AUROC over
them (then the highest minimum, then the first in the table's order); ``nll`` itself always
qualifies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["TOLERANCE", "choose_score", "leave_one_out", "recommended_rows"]

#: how far below the reference ``nll`` a candidate may fall on a set used for the choice
TOLERANCE = 0.02

Table = Mapping[str, Mapping[str, float]]


def choose_score(table: Table, sets: Iterable[str], reference: str | None = "nll", tolerance: float = TOLERANCE) -> str:
    """The score of ``table`` (``{score: {set: auroc}}``) recommended by its AUROCs on ``sets`` only
    (the rule of the module docstring). Scores missing any of ``sets`` are not candidates; without
    ``reference`` in the table every score qualifies."""
    used = list(sets)
    if not used:
        raise ValueError("choose_score needs at least one outlier set to choose on")
    candidates = [s for s in table if all(u in table[s] for u in used)]
    if not candidates:
        raise ValueError(f"no score has an AUROC on every set of {used}")
    if reference in candidates:
        floor = {u: table[reference][u] - tolerance for u in used}
        candidates = [s for s in candidates if s == reference or all(table[s][u] >= floor[u] for u in used)]
    order = {s: i for i, s in enumerate(table)}

    def key(s: str) -> tuple[float, float, int]:
        values = [table[s][u] for u in used]
        return (round(sum(values) / len(values), 12), round(min(values), 12), -order[s])

    return max(candidates, key=key)


def leave_one_out(
    table: Table, reference: str | None = "nll", tolerance: float = TOLERANCE
) -> dict[str, tuple[str, float]]:
    """``{set: (score chosen on the other sets, its AUROC on set)}`` for every set of the table's
    scores (at least two sets)."""
    sets = list(dict.fromkeys(u for row in table.values() for u in row))
    if len(sets) < 2:
        raise ValueError(f"leave-one-out needs at least two outlier sets, got {sets}")
    out = {}
    for held in sets:
        chosen = choose_score(table, [u for u in sets if u != held], reference, tolerance)
        if held in table[chosen]:
            out[held] = (chosen, float(table[chosen][held]))
    return out


def recommended_rows(rows: list[dict], reference: str | None = "nll") -> tuple[list[dict], str]:
    """The rows of an outlier-detection table (``score``, ``outlier_set``, ``auroc``, ...) with the
    recommended score first, and a note saying which it is. First: one ``recommended`` row per set,
    copied from the row of the score chosen on the other sets (its name in ``chosen``); then the
    rows of the score chosen on every set, marked ``recommended: for new data``; then the rest
    (``recommended`` empty). Fewer than two sets: the rows unchanged, every ``recommended`` empty."""
    table: dict[str, dict[str, float]] = {}
    for row in rows:
        table.setdefault(row["score"], {})[row["outlier_set"]] = float(row["auroc"])
    sets = list(dict.fromkeys(r["outlier_set"] for r in rows))
    if reference not in table:
        reference = None
    if len(sets) < 2:
        return [{**r, "chosen": "", "recommended": ""} for r in rows], "recommended: needs two outlier sets or more"
    overall = choose_score(table, sets, reference)
    by = {(r["score"], r["outlier_set"]): r for r in rows}
    first = [
        {**by[(chosen, held)], "score": "recommended", "chosen": chosen, "recommended": "leave one set out"}
        for held, (chosen, _) in leave_one_out(table, reference).items()
    ]
    marked = [{**r, "chosen": "", "recommended": "for new data"} for r in rows if r["score"] == overall]
    rest = [{**r, "chosen": "", "recommended": ""} for r in rows if r["score"] != overall]
    note = (
        f"recommended for new data: {overall} (the highest mean AUROC over all {len(sets)} sets among the scores "
        f"never more than {TOLERANCE} below {reference or 'any reference'} on any); the `recommended` rows: on each "
        f"set the score chosen the same way on the OTHER sets only (leave one outlier set out)"
    )
    return first + marked + rest, note
