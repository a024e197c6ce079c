"""The run's public API in one import, for scripts and plug-ins: ``from svbench import engine``.

The stages live in their own modules, each importing only the ones before it: :mod:`svbench.plan`
(what to compute), :mod:`svbench.unit` (one unit in a worker), :mod:`svbench.run` (identity,
execution into the store, summaries).
"""

from svbench.plan import PRECOMPUTED, Plan, RunSpec, Task, UsageError, WorkerContext, make_codec, task_label
from svbench.plan import build as plan
from svbench.run import (
                         Interrupted,
                         RunOutcome,
                         describe,
                         environment,
                         execute,
                         problem_lines,
                         problems,
                         run_id_for,
                         summarize,
)
from svbench.unit import evaluate, score

__all__ = ["PRECOMPUTED", "Interrupted", "Plan", "RunOutcome", "RunSpec", "Task", "UsageError", "WorkerContext",
           "describe", "environment", "evaluate", "execute", "make_codec", "plan", "problem_lines", "problems",
           "run_id_for", "score", "summarize", "task_label"]
