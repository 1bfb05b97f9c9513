"""Data-parallel training across processes and machines with torch's own engine: ``torchrun`` starts the processes
and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; this module reads them, joins the process group (gloo on CPU,
nccl on CUDA) and gives the training loop the few collectives it needs. Without torchrun the world is one process
and nothing here touches torch.distributed.

    torchrun --standalone --nproc-per-node=N -m gmn_plugins.cli.run SPEC [overrides]         # N processes, 1 machine
    torchrun --nnodes=M --nproc-per-node=N --rdzv-backend=c10d --rdzv-endpoint=HOST:29500 \\
        --rdzv-id=JOB -m gmn_plugins.cli.run SPEC [overrides]                                # on each of M machines

Every rank draws the same global batch and takes its fixed slice of the scenes (``data.loader``); noise is drawn
per global slot (``models.convdraw.noise_slots``); gradients are averaged with per-scene weights. A run of N ranks
therefore trains as a 1-process run with the same ``train.batch_scenes``, to float rounding.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket

import attrs
import torch
import torch.distributed as dist

from ..runtime.files import DataError
from ..core.spec import SpecError


@attrs.frozen
class World:
    """This process's place: ``rank`` of ``size`` processes, ``local_rank`` on its machine (its GPU index)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs, writes checkpoints and figures and draws the progress bar."""
        return self.rank == 0


def world_from_env(env=None) -> World:
    """The world torchrun describes in ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; one process when they are unset."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return World()
    return World(int(env.get("RANK", 0)), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))


def join(world: World, device: torch.device, spec_file: str) -> torch.device:
    """Join the process group of a world of more than one process (gloo for CPU, nccl for CUDA, each rank on GPU
    ``local_rank``) and return this rank's device. Raises ``SpecError`` (one line) for nccl without a GPU for
    this rank."""
    if world.size == 1:
        return device
    if device.type == "cuda":
        if torch.cuda.device_count() <= world.local_rank:
            raise SpecError(f"{spec_file}: train.device: rank {world.rank} needs GPU {world.local_rank} for nccl, but "
                            f"this machine has {torch.cuda.device_count()}; use train.device=cpu (gloo) or fewer "
                            f"processes per node")  # fmt: skip
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def leave(world: World, sync: bool = True) -> None:
    """Leave the process group, if this process joined one (after a last barrier when ``sync``; never after an
    error, which the other ranks may not share)."""
    if world.size > 1 and dist.is_initialized():
        if sync:
            dist.barrier()
        dist.destroy_process_group()


def agree(world: World, value, what: str, where: str) -> None:
    """Raise ``SpecError`` on every rank unless all ranks hold the same ``value`` (JSON-able; compared by sha256),
    naming ``what`` and the first rank that differs from rank 0."""
    if world.size == 1:
        return
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
    digests = [None] * world.size
    dist.all_gather_object(digests, digest)
    differ = [r for r, d in enumerate(digests) if d != digests[0]]
    if differ:
        raise SpecError(f"{where}: ranks disagree on {what}: rank {differ[0]} has another than rank 0 "
                        f"({len(differ)} of {world.size} ranks differ)")  # fmt: skip


def on_every_rank(world: World, attempt):
    """``attempt()`` on every rank. When it raises ``DataError`` on some rank (a shard missing or damaged on that
    machine), every rank raises ``DataError`` with the first such rank's one line, prefixed by its rank and host, so
    that no rank waits for the others in a collective. Returns ``attempt()``'s value."""
    error = result = None
    try:
        result = attempt()
    except DataError as exc:
        if world.size == 1:
            raise
        error = exc
    if world.size == 1:
        return result
    reports = [None] * world.size
    dist.all_gather_object(reports, None if error is None else (socket.gethostname(), str(error)))
    for rank, report in enumerate(reports):
        if report is not None:
            raise DataError(f"rank {rank} on {report[0]}: {report[1]}")
    return result


def parameters_digest(model: torch.nn.Module) -> str:
    """sha256 of every parameter's bytes, in order: equal on every rank of a healthy data-parallel run."""
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier()


def sum_over_ranks(world: World, values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64)."""
    if world.size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return tensor.cpu().tolist()
