"""The selection folder: its writer and readers (no torch; the workflow reads it).

out/
  candidates.csv     one row per candidate fit: method, rank, partition, seed, the
                     validation scores (disrnn.selection.score.SCORES), fit_seconds,
                     epochs, best_epoch, stop_reason, fit_dir (relative to out/)
  selection.json     the decision (disrnn.selection.rule.decide: rank, partition,
                     verdict, sentence, fit_groups, the per-rank and per-partition
                     summaries) with the rule's text, the config, the fit options and
                     the dataset's identity
  fits/<method>/<partition>/seed<s>/   the candidates' fit folders (load_fit)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from disrnn._json import sanitize

__all__ = ["read_selection", "selected_groups", "selection_json", "write_selection"]

SELECTION_JSON = "selection.json"
CANDIDATES_CSV = "candidates.csv"


def write_selection(folder: Path, rows: list[dict], decision: dict, meta: dict) -> None:
    """Write candidates.csv and selection.json into ``folder`` (inside an atomic_dir)."""
    import pandas as pd

    pd.DataFrame(rows).to_csv(folder / CANDIDATES_CSV, index=False)
    text = json.dumps(sanitize({**decision, **meta}), indent=2)
    (folder / SELECTION_JSON).write_text(text)  # last: a folder with it is complete


def selection_json(path: str | os.PathLike) -> Path:
    """The selection.json of a selection folder (or the file itself).

    Raises:
        FileNotFoundError: none there (the message names the command that writes it).
    """
    path = Path(path)
    file = path if path.name == SELECTION_JSON else path / SELECTION_JSON
    if not file.is_file():
        raise FileNotFoundError(
            f"no model selection at {str(path)!r} ({SELECTION_JSON} missing); run "
            "`disrnn select DATASET --out DIR` first"
        )
    return file


def read_selection(path: str | os.PathLike) -> tuple[dict, pd.DataFrame]:  # noqa: F821
    """(selection.json as a dict, candidates.csv as a DataFrame) of a selection folder.

    Raises:
        FileNotFoundError: no selection.json; ValueError: it is not a JSON object.
    """
    import pandas as pd

    sel = _read_json(path)
    csv = selection_json(path).parent / CANDIDATES_CSV
    return sel, (pd.read_csv(csv) if csv.is_file() else pd.DataFrame())


def _read_json(path) -> dict:
    file = selection_json(path)
    try:
        sel = json.loads(file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(file)!r} is not valid JSON ({err}); rerun the selection") from None
    if not isinstance(sel, dict):
        raise ValueError(f"{str(file)!r} holds no JSON object; rerun the selection")
    return sel


def selected_groups(path: str | os.PathLike) -> tuple[int, ...]:
    """The group sizes ``fit: {groups: auto}`` fits: the selected partition (without
    evidence for modules, the partition that cost least likelihood at the selected K)."""
    sel = _read_json(path)
    return tuple(int(g) for g in sel["fit_groups"])
