"""Data parallel evaluation: one process per device, as lmms-eval runs models under ``accelerate launch``
or ``torchrun``. Each process answers its shard of the samples (lmms-eval shards them by rank) into its
own samples file of the run folder; rank 0 gathers what every rank served and writes the summary.

``launch`` starts the processes itself (``adaspark-eval run --num-processes N``), one per device,
with the environment torchrun would give them; they talk over gloo on the CPU and NCCL on CUDA
(accelerate picks).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist

WORKER_ENV = "WORLD_SIZE"  # set by torchrun and accelerate launch in every process they start


def world_size() -> int:
    """How many processes this run has (1 outside a launcher)."""
    return int(os.environ.get(WORKER_ENV, "1"))


def join(device: str | None) -> tuple[Any, torch.device]:
    """In a launched process, the ``Accelerator`` (process group initialised) and this process's device
    (``cpu``, or the CUDA device of its local rank); ``(None, device)`` in a single process."""
    wanted = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if world_size() == 1:
        return None, wanted
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=wanted.type == "cpu")
    return accelerator, accelerator.device if wanted.type == "cuda" else wanted


def gather_served(served: Sequence[Any]) -> list[Any]:
    """Every rank's served keys, interleaved rank by rank (lmms-eval deals samples out round-robin);
    one process: ``served`` itself. Collective: every rank must call it."""
    if world_size() == 1:
        return list(served)
    lists: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(lists, list(served))
    longest = max(len(keys) for keys in lists)
    return [keys[i] for i in range(longest) for keys in lists if i < len(keys)]


def leave() -> None:
    """In a launched process whose collectives are all done, take down its process group (torch warns
    about, and may leak, one left at exit); nothing in a single process."""
    if world_size() > 1 and dist.is_initialized():
        dist.destroy_process_group()


def launch(num_processes: int, argv: Sequence[str]) -> int:
    """Run ``adaspark-eval <argv>`` in ``num_processes`` processes (the environment torchrun gives: rank,
    world size, rendezvous address), in this process group, so killing the group kills them all. Returns
    the first failing exit status (the other processes are then stopped), else 0."""
    base = {**os.environ, WORKER_ENV: str(num_processes), "LOCAL_WORLD_SIZE": str(num_processes),
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    base.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // num_processes)))
    workers = [subprocess.Popen([sys.executable, "-m", "adaspark_eval.cli.main", *argv],
                                env={**base, "RANK": str(rank), "LOCAL_RANK": str(rank)})
               for rank in range(num_processes)]
    try:
        while True:
            codes = [worker.poll() for worker in workers]
            failed = [code for code in codes if code not in (None, 0)]
            if failed or all(code == 0 for code in codes):
                return failed[0] if failed else 0
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
