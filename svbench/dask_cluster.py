"""``svbench cluster slurm|pbs``: Dask workers as batch jobs (dask-jobqueue), for ``svbench run --scheduler``.

This process hosts the scheduler and keeps ``--jobs`` jobs running, each with one single-threaded
worker per core (``processes = cores``). Workers retire five minutes before the walltime and a new
job replaces each, so a long run outlives any job; Ctrl-C ends the jobs. Imports nothing heavy until
the command runs (the CLI loads this module on every start).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from typing import Any


def add_cluster_parser(sub: Any) -> None:
    p = sub.add_parser("cluster", help="start Dask workers as SLURM or PBS jobs (dask-jobqueue) and print the "
                       "scheduler address for `svbench run --scheduler`; Ctrl-C ends the jobs")
    p.add_argument("system", choices=["slurm", "pbs"])
    p.add_argument("--jobs", type=int, default=1, help="batch jobs to keep running (one node each, typically)")
    p.add_argument("--cores", type=int, required=True, help="cores per job: one single-threaded worker per core")
    p.add_argument("--memory", required=True, help="memory per job, e.g. 64GB (split among its workers)")
    p.add_argument("--queue", help="partition (SLURM) or queue (PBS)")
    p.add_argument("--account", help="account / project to charge")
    p.add_argument("--walltime", default="04:00:00", help="per job, HH:MM:SS (default 04:00:00)")
    p.add_argument("--job-extra", action="append", default=[], help="extra #SBATCH/#PBS directive, repeatable")
    p.add_argument("--prologue", action="append", default=[],
                   help="shell line run before the workers start, e.g. 'cd /shared/project', repeatable")
    p.add_argument("--python", default=sys.executable, help="python with svbench installed, as the nodes see it "
                   "(default: this one)")
    p.add_argument("--interface", help="network interface of workers and scheduler, e.g. ib0")
    p.add_argument("--port", type=int, default=8786, help="scheduler port (default 8786)")
    p.add_argument("--dry-run", action="store_true", help="print the job script and exit; submit nothing")


def env_name(key: str) -> str:
    """Dask's environment variable for a config key: distributed.admin.tick.interval -> DASK_DISTRIBUTED__..."""
    return "DASK_" + key.upper().replace(".", "__").replace("-", "_")


def lifetime(walltime: str) -> str:
    """Worker lifetime: the walltime less 5 minutes, so a worker hands its tasks back before the kill."""
    try:
        h, m, s = (int(x) for x in walltime.split(":"))
    except ValueError:
        raise ValueError(f"--walltime {walltime!r}: expected HH:MM:SS") from None
    return f"{max(1, (h * 3600 + m * 60 + s) // 60 - 5)}m"


def cmd_cluster(args: argparse.Namespace, console: Any) -> int:
    import dask
    from dask_jobqueue import PBSCluster, SLURMCluster

    from svbench.dask_executor import QUIET_CONFIG, SCHEDULER_CONFIG

    cls = {"slurm": SLURMCluster, "pbs": PBSCluster}[args.system]
    quiet = [f"export {env_name(k)}={v}" for k, v in QUIET_CONFIG.items()]  # the workers' own config
    with dask.config.set({**SCHEDULER_CONFIG, **QUIET_CONFIG}):  # read when the scheduler starts
        cluster = cls(cores=args.cores, processes=args.cores, memory=args.memory, queue=args.queue,
                      account=args.account, walltime=args.walltime, job_extra_directives=args.job_extra,
                      job_script_prologue=[*args.prologue, *quiet], python=args.python, interface=args.interface,
                      worker_extra_args=["--lifetime", lifetime(args.walltime), "--lifetime-stagger", "4m"],
                      scheduler_options={"port": 0 if args.dry_run else args.port, "dashboard_address": None})
    with cluster:
        if args.dry_run:
            print(cluster.job_script())
            return 0
        cluster.adapt(minimum_jobs=args.jobs, maximum_jobs=args.jobs)  # a job that ends is replaced
        print(cluster.scheduler_address, flush=True)
        console.print(f"scheduler {cluster.scheduler_address}: {args.jobs} job(s) x {args.cores} workers requested. "
                      f"In another shell: export SVBENCH_SCHEDULER={cluster.scheduler_address}; svbench run ...  "
                      "Ctrl-C here ends the jobs.")
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(60)
                console.print(f"{len(cluster.scheduler_info.get('workers', {}))} workers connected")
    return 0
