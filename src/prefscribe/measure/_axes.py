"""The directions in which people's choices differ: found in a population, with no labels and no list of
dimensions chosen in advance.

One person's few comparisons measure each quality with much noise, and the qualities move together (the judge
calls the longer reply more technical, more formal and more rigorous at once). A single quality's z then
states whichever quality was noisiest for that person. Pooled over qualities the signal is steadier, so the
writer states a person's position on the population's axes of taste: the directions w that maximise

    between-person variance / within-person variance = (w' B w) / (w' W w)

where W is the pooled covariance of one comparison's scores around its person's mean (the judge's noise and
the pairs' variety) and B the covariance of the people's means less the part W explains. An axis is kept when
its ratio beats what the same population's comparisons, shuffled across people, give (a permutation test): a
quality everyone shares, or on which people differ only by noise, makes no axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

MIN_PEOPLE = 16       # fewer and the axes are noise
MAX_AXES = 3
PERMUTATIONS = 40
LEVEL = 0.95          # an axis must beat this quantile of the shuffled populations' largest ratio
SHRINK = 0.2          # W is shrunk this far towards its diagonal: 22 qualities, a few hundred comparisons


class Axis(BaseModel):
    """weights: w per quality; loadings: how far each quality's mean moves per unit of the axis, in units of
    that quality's within-person spread (the qualities that name the axis); noise: w' W w, the variance of
    one comparison's projection; ratio: between- over within-person variance; null: the permutation bar."""

    weights: dict[str, float]
    loadings: dict[str, float]
    noise: float
    ratio: float
    null: float


def fit_axes(people: Sequence[Sequence[dict[str, float]]], *, seed: int = 0) -> list[Axis]:
    """The significant axes of a population (one list of per-comparison scores per person), strongest first."""
    rows = [s for person in people for s in person]
    qualities = sorted(set.intersection(*map(set, rows))) if rows else []
    groups = [np.array([[s[q] for q in qualities] for s in person]) for person in people if len(person) > 1]
    if len(groups) < MIN_PEOPLE or not qualities:
        return []
    # A quality that does not vary within people (a judge that never reads it) has no noise to divide by.
    varies = [j for j in range(len(qualities)) if sum(float(np.var(g[:, j])) for g in groups) > 1e-12]
    qualities = [qualities[j] for j in varies]
    groups = [g[:, varies] for g in groups]
    if not qualities:
        return []
    ratios, vectors, within, between = _solve(groups)
    null = _null(groups, np.random.default_rng(seed))
    scale = np.sqrt(np.clip(np.diag(within), 1e-12, None))
    axes = []
    for k in range(min(MAX_AXES, len(ratios))):
        if ratios[k] <= null:
            break
        w = vectors[:, k]
        load = (between @ w) / np.sqrt(max(float(w @ between @ w), 1e-12)) / scale
        sign = 1.0 if load[np.argmax(np.abs(load))] > 0 else -1.0  # the axis points where its main quality grows
        axes.append(Axis(weights=dict(zip(qualities, (sign * w).tolist())),
                         loadings=dict(zip(qualities, (sign * load).tolist())),
                         noise=float(w @ within @ w), ratio=float(ratios[k]), null=null))
    return axes


def _solve(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sizes = np.array([len(g) for g in groups])
    means = np.array([g.mean(0) for g in groups])
    centred = [g - g.mean(0) for g in groups]
    within = sum(c.T @ c for c in centred) / (sizes - 1).sum()
    within = (1 - SHRINK) * within + SHRINK * np.diag(np.diag(within))
    spread = np.cov(means, rowvar=False, ddof=1)
    between = spread - within * np.mean(1.0 / sizes)
    # Generalized symmetric eigenproblem B w = r W w, through W's Cholesky factor.
    lower = np.linalg.cholesky(within + 1e-9 * np.eye(len(within)))
    inv = np.linalg.inv(lower)
    ratios, v = np.linalg.eigh(inv @ between @ inv.T)
    order = np.argsort(-ratios)
    vectors = inv.T @ v[:, order]
    vectors /= np.sqrt(np.einsum("ik,ij,jk->k", vectors, within, vectors))  # unit noise per comparison
    return ratios[order], vectors, within, between


def _null(groups: list[np.ndarray], rng: np.random.Generator) -> float:
    """The LEVEL quantile of the largest ratio when comparisons are dealt to people at random."""
    pooled = np.concatenate(groups)
    bounds = np.cumsum([len(g) for g in groups])[:-1]
    tops = [_solve(np.split(pooled[rng.permutation(len(pooled))], bounds))[0][0] for _ in range(PERMUTATIONS)]
    return float(np.quantile(tops, LEVEL))


def position(axis: Axis, means: dict[str, float], centre: dict[str, float], n: int) -> float:
    """A person's z on an axis: their mean scores' projection from the population's centre, in units of the
    noise of a mean of n comparisons."""
    shift = sum(w * (means[q] - centre[q]) for q, w in axis.weights.items())
    return shift / float(np.sqrt(axis.noise / n))
