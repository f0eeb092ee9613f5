"""Goal-reaching planning: success rate and final distance to the goal over episodes."""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """Success rate of planning episodes and the mean final distance to the goal (episodes whose env reports
no distance are left out of the mean)."""

_INPUTS = """
Args:
    successes: list of M booleans, one per episode.
    final_distances: list of M floats or None (the env's distance to the goal at the end of each episode).
Returns:
    {"success_rate": float, "successes": int, "episodes": int, "mean_final_distance": float or None}
Example:
    >>> metric = evaluate.load("path/to/planning_success")
    >>> metric.compute(successes=[True, False], final_distances=[0.05, 0.8])
    {'success_rate': 0.5, 'successes': 1, 'episodes': 2, 'mean_final_distance': 0.425}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class PlanningSuccess(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features({"successes": datasets.Value("bool"),
                                        "final_distances": datasets.Value("float64")}),
        )

    def _compute(self, successes, final_distances):
        success = np.asarray(successes, dtype=bool)
        distances = [float(d) for d in final_distances if d is not None]
        return {
            "success_rate": float(success.mean()) if len(success) else float("nan"),
            "successes": int(success.sum()),
            "episodes": int(len(success)),
            "mean_final_distance": float(np.mean(distances)) if distances else None,
        }
