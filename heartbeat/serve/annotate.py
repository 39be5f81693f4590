"""``heartbeat predict --format wfdb``: the predictions as a WFDB annotation file.

Each beat becomes a beat annotation at its R-peak sample, with the WFDB beat code of its AAMI
class. This mapping is our extension (EC57 maps WFDB codes to AAMI classes, not back): every
class gets the one WFDB code whose meaning is the class itself, so that WFDB's viewers show it
and ``bxb`` (and ``heartbeat score``) count it in the same class again:

====== ========== ======================================================
class  WFDB code  WFDB meaning
====== ========== ======================================================
N      ``N``      normal beat
S      ``S``      premature or ectopic supraventricular beat
V      ``V``      premature ventricular contraction
F      ``F``      fusion of ventricular and normal beat
Q      ``Q``      unclassifiable beat
====== ========== ======================================================

The file stores the sampling rate, so ``wfdb.rdann`` gives times in seconds without the header.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from heartbeat.core.beat_spec import MITBIH_CLASSES
from heartbeat.core.errors import DataError, ModelError, ParamsError

AAMI_TO_WFDB: dict[str, str] = {"N": "N", "S": "S", "V": "V", "F": "F", "Q": "Q"}
"""AAMI class -> WFDB beat code (see the module docstring)."""


def annotation_bytes(
    samples: np.ndarray, classes: Sequence[str], fs: float, class_names: Sequence[str]
) -> bytes:
    """The bytes of a WFDB annotation file (MIT format) with one beat annotation per beat."""
    import wfdb

    if tuple(class_names) != MITBIH_CLASSES:
        raise ModelError(
            f"--format wfdb: writes the AAMI classes (N S V F Q) as WFDB beat codes; this model predicts "
            f"{' '.join(class_names)}; use --format csv or json"
        )
    samples = np.asarray(samples, dtype=np.int64)
    symbols = [AAMI_TO_WFDB[c] for c in classes]
    if not samples.size:
        raise DataError(
            "--format wfdb: the recording has no beats, and a WFDB annotation file holds at least one"
        )
    with tempfile.TemporaryDirectory(prefix="heartbeat-wfdb-") as folder:
        wfdb.wrann("beats", "ann", samples, symbol=symbols, fs=fs, write_dir=folder)
        return (Path(folder) / "beats.ann").read_bytes()


def check_wfdb_output(output: str | None) -> None:
    """``-o`` for ``--format wfdb``: a WFDB annotation file is named record.annotator."""
    if output is None or output == "-" or output.startswith("/dev/"):
        return
    suffix = Path(output).suffix
    if not suffix or not suffix[1:].replace("_", "").isalnum() or not Path(output).stem:
        raise ParamsError(
            f"-o {output}: a WFDB annotation file is named after its record and annotator, e.g. "
            "101.heartbeat (record 101, annotator heartbeat); give such a name"
        )
