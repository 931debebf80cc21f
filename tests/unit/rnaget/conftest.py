"""Shared fixtures for the RNAget pure-core tests: a random matrix with NaN holes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from services.rnaget.formats import EXPRESSION
from services.rnaget.matrix import MatrixFile, write_matrix


@dataclass
class SourceMatrix:
    values: np.ndarray
    gene_ids: list[str]
    gene_names: list[str]
    samples: list[str]
    tissues: list[str]
    path: Path


def make_source(tmp_path: Path, n_rows: int = 5000, n_cols: int = 37, seed: int = 7) -> SourceMatrix:
    rng = np.random.default_rng(seed)
    values = (rng.gamma(1.0, 20.0, size=(n_rows, n_cols))).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan
    values[3] = np.nan  # a feature never measured
    gene_ids = [f"ENSG{i:011d}" for i in range(n_rows)]
    gene_names = [f"G{i % (n_rows - 10)}" for i in range(n_rows)]  # a few names repeat
    samples = [f"S{j} - primary tumour" for j in range(n_cols)]
    tissues = [f"tissue {j % 3}" for j in range(n_cols)]
    path = tmp_path / "m.h5"
    write_matrix(path, kind=EXPRESSION, values=values,
                 row_attrs={"GeneID": gene_ids, "GeneName": gene_names},
                 col_attrs={"Sample": samples, "Tissue": tissues})
    return SourceMatrix(values, gene_ids, gene_names, samples, tissues, path)


@pytest.fixture
def source(tmp_path: Path) -> SourceMatrix:
    return make_source(tmp_path)


@pytest.fixture
def opened(source: SourceMatrix):  # type: ignore[no-untyped-def]
    with MatrixFile.open(source.path) as mf:
        yield mf
