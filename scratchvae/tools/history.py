"""The record of a training run: :class:`History`, one dict per epoch, and strict JSON.

:func:`scratchvae.tools.train.fit` appends a record after each epoch; a run
folder keeps the records as history.csv and history.json, and a checkpoint
keeps them as JSON text (:func:`strict_json`: a NaN or an infinity becomes
``null``). Guide: docs/training.md
"""

import csv
import json
from pathlib import Path

import numpy as np

__all__ = ["TRACK_IWAE_K", "History", "strict_json"]


def strict_json(value):
    """``value`` as indented JSON text, each NaN or infinite float written as ``null``.

    ``json.dumps`` would write the tokens ``NaN`` and ``Infinity``, which are not
    JSON and which other readers refuse.

    Examples
    --------
    >>> strict_json({"a": [1.5, float("nan")]}).split()
    ['{', '"a":', '[', '1.5,', 'null', ']', '}']
    """
    return json.dumps(_finite_or_none(value), indent=1, allow_nan=False)


def _finite_or_none(value):
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


# Importance samples of the log-likelihood estimate that fit(..., iwae_every=N) records
# as "test_iwae": a fifth of the final estimate's default k, enough to draw the curve.
TRACK_IWAE_K = 100


class History:
    """One dict per epoch, in order; written as CSV (for spreadsheets) or JSON.

    Keys of each record: ``epoch``, ``train_elbo``, ``train_reconstruction``,
    ``train_kl`` (means per example over the epoch's steps, in nats),
    ``test_elbo`` (None without a test set), ``test_iwae`` (the tracked
    log-likelihood estimate, None when not measured that epoch),
    ``active_units``, ``beta`` (KL weight at the epoch's last step), ``lr``
    (the epoch's learning rate), ``seconds`` (training) and ``eval_seconds``.

    Examples
    --------
    >>> h = History([{"epoch": 1, "train_elbo": -120.5}])
    >>> History.from_json_string(h.to_json_string()) == h
    True
    """

    FIELDS = ("epoch", "train_elbo", "train_reconstruction", "train_kl", "test_elbo",
              "test_iwae", "active_units", "beta", "lr", "seconds", "eval_seconds")
    # Also in each record, in history.json only: "kl_per_dimension", a list of D_z numbers.

    def __init__(self, records=None):
        self.records = [dict(r) for r in records or []]

    def __len__(self):
        return len(self.records)

    def __eq__(self, other):
        return isinstance(other, History) and self.records == other.records

    def append(self, record):
        self.records.append(dict(record))

    def to_json_string(self):
        """The records as strict JSON (see :func:`strict_json`)."""
        return strict_json({"records": self.records})

    @classmethod
    def from_json_string(cls, text):
        return cls(json.loads(text)["records"])

    def to_json(self, path):
        """Write the records to ``path`` as JSON (floats round-trip exactly)."""
        Path(path).write_text(self.to_json_string() + "\n")

    @classmethod
    def from_json(cls, path):
        """Read a History written by :meth:`to_json`."""
        return cls.from_json_string(Path(path).read_text())

    def to_csv(self, path):
        """Write one row per epoch to ``path``; a missing value is an empty cell."""
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.FIELDS, restval="", extrasaction="ignore")
            writer.writeheader()
            for record in self.records:
                writer.writerow({k: "" if v is None else v for k, v in record.items()})
