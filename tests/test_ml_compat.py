"""dask-ml's incremental searches run on the pinned (new) Dask once patched, on a real cluster."""

from __future__ import annotations

import dask
import numpy as np
import pytest
from dask_ml.datasets import make_classification
from dask_ml.model_selection import (
    HyperbandSearchCV,
    IncrementalSearchCV,
    SuccessiveHalvingSearchCV,
)
from sklearn.linear_model import SGDClassifier

from workbench.ml.compat import patch_dask_ml_searches

SEARCHES = {
    "hyperband": lambda est, grid: HyperbandSearchCV(est, grid, max_iter=9, random_state=0),
    "incremental": lambda est, grid: IncrementalSearchCV(
        est, grid, n_initial_parameters=4, max_iter=6, random_state=0
    ),
    "successive_halving": lambda est, grid: SuccessiveHalvingSearchCV(
        est, grid, n_initial_parameters=4, n_initial_iter=1, max_iter=6, random_state=0
    ),
}


@pytest.mark.parametrize("kind", sorted(SEARCHES))
def test_incremental_search_runs_and_is_deterministic(client, kind):
    assert patch_dask_ml_searches()
    X, y = make_classification(n_samples=20_000, n_features=10, chunks=2_000, random_state=0)
    X, y = dask.persist(X, y)  # persisted inputs are the common case
    grid = {"alpha": np.logspace(-4, -1, 8), "penalty": ["l1", "l2"]}
    fits = []
    for _ in range(2):
        search = SEARCHES[kind](SGDClassifier(tol=None, random_state=0), grid)
        search.fit(X, y, classes=[0, 1])
        fits.append((search.best_score_, search.best_params_))
    assert fits[0] == fits[1]
    assert fits[0][0] > 0.55  # balanced classes: chance is 0.5


def test_patch_is_idempotent_and_leaves_dask_alone():
    real = dask.persist
    assert patch_dask_ml_searches() and patch_dask_ml_searches()
    assert dask.persist is real
