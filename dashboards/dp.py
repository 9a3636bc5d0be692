"""User-level differential privacy for research answers, built from OpenDP measurements.

Responsible for turning a table of *bounded* per-cell sums (each visitor already limited to at
most ``max_cells`` cells and to ``clip[m]`` of every metric per cell, by
``warehouse.research``) into a noisy release, and for accounting what it cost:

* which cells exist is decided privately: the exact visitor count of every candidate cell goes
  through OpenDP's ``make_laplace_threshold`` (discrete Laplace noise, then a threshold), an
  approximate-DP mechanism whose delta is the chance that a cell only a few visitors could
  create is published; the noisy count it releases is the published ``visitors``;
* every other metric of the published cells gets discrete Laplace noise (``make_laplace``)
  calibrated to its own L1 sensitivity ``max_cells * clip[m]``;
* the pieces are composed by ``make_adaptive_composition``: its privacy map is the query's cost,
  and ``Accountant`` composes a researcher's past costs with ``make_composition``.

The contribution bounds are enforced in SQL, so the transformations that hand the table to
OpenDP are user transformations whose stability maps state those bounds (OpenDP's
"honest-but-curious" feature). The noise itself is always sampled by the library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import opendp.prelude as dp

dp.enable_features("contrib", "honest-but-curious")

Cells = dict[str, dict[str, int]]  # cell key -> metric -> bounded exact sum
_TABLE = dp.user_domain("BoundedCells", lambda x: isinstance(x, dict))
_UNIT = dp.symmetric_distance()  # one visitor added or removed
_MEASURE = dp.approximate(dp.max_divergence())
_COUNTS = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=dp.i64))
_COUNTS_METRIC = dp.l01inf_distance(dp.absolute_distance(T=dp.i64))
_VECTOR = dp.vector_domain(dp.atom_domain(T=dp.i64))
_VECTOR_METRIC = dp.l1_distance(T=dp.i64)


@dataclass(frozen=True)
class Plan:
    """What one research question may spend and how each visitor's contribution is bounded.

    ``metrics`` are the metrics besides ``visitors``; ``clip`` gives each one's cap per visitor
    and cell. Half of ``epsilon`` decides which cells exist (and counts their visitors), the
    other half is shared equally by the other metrics."""

    metrics: tuple[str, ...]
    epsilon: float
    delta: float
    max_cells: int
    clip: dict[str, int] = field(default_factory=dict)

    def epsilon_of(self, metric: str) -> float:
        if not self.metrics:
            return self.epsilon
        return self.epsilon / 2 if metric == "visitors" else self.epsilon / 2 / len(self.metrics)

    def sensitivity(self, metric: str) -> int:
        """How much one visitor can move the metric's cells together (L1)."""
        return self.max_cells * (1 if metric == "visitors" else self.clip[metric])

    def scale(self, metric: str) -> float:
        return self.sensitivity(metric) / self.epsilon_of(metric)


class Mechanism:
    """The OpenDP measurements of one ``Plan``: build once, release many times."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.threshold = self._threshold()
        self.selector = self._cells_in() >> dp.m.make_laplace_threshold(
            _COUNTS, _COUNTS_METRIC, scale=plan.scale("visitors"), threshold=self.threshold
        )
        mids = [self.selector.map(1)] + [self._metric(m, []).map(1) for m in plan.metrics]
        self.composition = dp.c.make_adaptive_composition(_TABLE, _UNIT, _MEASURE, 1, mids)

    @cached_property
    def cost(self) -> tuple[float, float]:
        """(epsilon, delta) of one release, as the library's composition map states it."""
        epsilon, delta = self.composition.map(1)
        return float(epsilon), float(delta)

    def _threshold(self) -> int:
        """The smallest threshold whose privacy map meets the plan's delta."""
        plan = self.plan
        scale = plan.scale("visitors")
        bound = (plan.max_cells, plan.max_cells, 1)

        def meets(threshold: float) -> bool:
            measurement = dp.m.make_laplace_threshold(
                _COUNTS, _COUNTS_METRIC, scale=scale, threshold=threshold
            )
            return measurement.map(bound)[1] <= plan.delta

        return int(dp.binary_search(meets, bounds=(1, 2**30)))

    def _cells_in(self):
        bound = self.plan.max_cells
        return dp.t.make_user_transformation(
            _TABLE,
            _UNIT,
            _COUNTS,
            _COUNTS_METRIC,
            lambda table: {key: values["visitors"] for key, values in table.items()},
            lambda d_in: (bound * d_in, bound * d_in, d_in),
        )

    def _metric(self, metric: str, keys: list[str]):
        sensitivity = self.plan.sensitivity(metric)
        pick = dp.t.make_user_transformation(
            _TABLE,
            _UNIT,
            _VECTOR,
            _VECTOR_METRIC,
            lambda table: [table.get(key, {}).get(metric, 0) for key in keys],
            lambda d_in: sensitivity * d_in,
        )
        return dp.c.make_approximate(
            pick >> dp.m.make_laplace(_VECTOR, _VECTOR_METRIC, scale=self.plan.scale(metric))
        )

    def release(self, cells: Cells) -> Cells:
        """Noisy values of the cells that pass the private threshold (keys sorted)."""
        session = self.composition(cells)
        visitors = session(self.selector)
        keys = sorted(visitors)
        out: Cells = {key: {"visitors": int(visitors[key])} for key in keys}
        for metric in self.plan.metrics:
            for key, value in zip(keys, session(self._metric(metric, keys))):
                out[key][metric] = int(value)
        return out

    def noise(self) -> dict:
        """The noise parameters of every metric: enough to compute confidence intervals."""
        plan = self.plan
        described = {}
        for metric in ("visitors", *plan.metrics):
            scale = plan.scale(metric)
            described[metric] = {
                "mechanism": "discrete_laplace",
                "scale": scale,
                "epsilon": plan.epsilon_of(metric),
                "l1_sensitivity": plan.sensitivity(metric),
                "clip_per_visitor_cell": 1 if metric == "visitors" else plan.clip[metric],
                "variance": discrete_laplace_variance(scale),
                "ci95_half_width": float(dp.discrete_laplacian_scale_to_accuracy(scale, 0.05)),
            }
        described["visitors"]["threshold"] = self.threshold
        return described


def discrete_laplace_variance(scale: float) -> float:
    """Variance of the discrete Laplace with P(x) proportional to exp(-|x| / scale)."""
    import math

    q = math.exp(-1 / scale)
    return 2 * q / (1 - q) ** 2


class Accountant:
    """Composes (epsilon, delta) costs with the library's basic composition."""

    @staticmethod
    def total(costs: list[tuple[float, float]]) -> tuple[float, float]:
        if not costs:
            return 0.0, 0.0
        spent = dp.c.make_composition([_stand_in(e, d) for e, d in costs])
        epsilon, delta = spent.map(1)
        return float(epsilon), float(delta)


def _stand_in(epsilon: float, delta: float):
    """A measurement that releases nothing and costs what a ledger row says was spent."""
    return dp.m.make_user_measurement(
        dp.atom_domain(T=bool),
        _UNIT,
        _MEASURE,
        lambda _: None,
        lambda d_in: (epsilon, delta) if d_in <= 1 else (float("inf"), 1.0),
    )
