"""Pruning settings and the paper's per-dataset presets."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class PruneSettings:
    """alpha: keep the top `alpha` share of points by S_learn (0 < alpha <= 1).
    tau_low, tau_high: then keep points with tau_low < S_tract < tau_high (strict, as in METHOD.md)."""

    alpha: float
    tau_low: float
    tau_high: float

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise InputError(f"alpha must be in (0, 1], got {self.alpha}", field="alpha")
        if not 0.0 <= self.tau_low < self.tau_high <= 1.0:
            raise InputError(f"the S_tract band needs 0 <= low < high <= 1, got [{self.tau_low}, {self.tau_high}]",
                             field="tract")


# The paper's settings (AlignXplore+, RL data): alpha, then the S_tract band.
PRESETS: dict[str, PruneSettings] = {
    "amazon": PruneSettings(alpha=0.4, tau_low=0.50, tau_high=0.90),
    "mind": PruneSettings(alpha=0.1, tau_low=0.99, tau_high=1.00),
    "alignx": PruneSettings(alpha=0.1, tau_low=0.98, tau_high=1.00),
}


def resolve_settings(preset: str | None, alpha: float | None, tract: tuple[float, float] | None) -> PruneSettings:
    """A preset, with any of its values overridden; without a preset, alpha and the band are required."""
    if preset is not None and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}", field="preset")
    base = PRESETS.get(preset) if preset else None
    if base is None and (alpha is None or tract is None):
        raise InputError("give --alpha and --tract LOW,HIGH, or a --preset "
                         f"({', '.join(sorted(PRESETS))})", field="alpha")
    return PruneSettings(alpha=alpha if alpha is not None else base.alpha,  # type: ignore[union-attr]
                         tau_low=tract[0] if tract else base.tau_low,  # type: ignore[union-attr]
                         tau_high=tract[1] if tract else base.tau_high)  # type: ignore[union-attr]
