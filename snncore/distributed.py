"""Several processes (torchrun) training one run with DistributedDataParallel.

    torchrun --nproc_per_node=N -m snncore train [flags]     # or python -m torch.distributed.run ...

torchrun sets WORLD_SIZE, RANK and LOCAL_RANK; with WORLD_SIZE > 1 the command line calls
:func:`init_from_env` (backend nccl on CUDA, each rank on cuda:LOCAL_RANK; gloo on the CPU).
Conventions:
- batch_size is per process (torch's convention): one optimizer step sees N * batch_size samples,
  and an epoch is ceil(n / N / batch_size) steps (every rank takes its rank-strided share of the
  same shuffled order, padded by wrap-around as torch's DistributedSampler does).
- Only rank 0 talks to the RunStore; the other ranks get a :class:`NullStore`.
- Local rules that use batch statistics all-reduce their update, so weights stay identical.

Every helper here is a no-op (or the identity) in a single process, so single-process code calls
them unconditionally.
"""
from __future__ import annotations

import datetime
import os
import pickle

import torch
import torch.distributed as dist

DEFAULT_TIMEOUT_S = 1800.0   # a rank waiting longer than this on the others fails instead of hanging


def env_world() -> int:
    """WORLD_SIZE as torchrun set it (1 when not launched by torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def is_main() -> bool:
    return rank() == 0


def timeout_s() -> float:
    """Collective timeout: $SNNCORE_DIST_TIMEOUT seconds (default 1800)."""
    try:
        return max(1.0, float(os.environ.get("SNNCORE_DIST_TIMEOUT", DEFAULT_TIMEOUT_S)))
    except ValueError:
        return DEFAULT_TIMEOUT_S


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes; returns this rank's device. CUDA: each process
    takes cuda:LOCAL_RANK and the group has two backends, nccl for CUDA tensors (gradients, metrics)
    and gloo for CPU ones (control messages); CPU: gloo. A single process: nothing to do.
    Raises ValueError when a process has no GPU of its own."""
    if env_world() <= 1:
        return device
    if device.type == "cuda":
        n = torch.cuda.device_count()
        if local_rank() >= n:
            raise ValueError(f"process {local_rank()} on this machine has no GPU of its own (it has {n}); "
                             f"start at most {n} per machine (--nproc_per_node) or use --device cpu")
        torch.cuda.set_device(local_rank())
        device = torch.device("cuda", local_rank())
    if not dist.is_initialized():
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(seconds=timeout_s()))
    return device


def shutdown(sync: bool = False) -> None:
    """Leave the process group (safe to call when none is running). sync: first wait until every
    rank gets here (at most 60 s), so no rank tears down its gloo threads while another still talks
    to it (that aborts the process: "terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        try:
            if sync:
                if dist.get_backend() == "gloo":
                    dist.monitored_barrier(timeout=datetime.timedelta(seconds=60))
                else:
                    dist.barrier()
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 -- a broken group at exit: the process ends anyway
            pass


def all_reduce_sum_(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks, in place (no-op in a single process)."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_reduce_mean_(t: torch.Tensor) -> torch.Tensor:
    """Mean of ``t`` over ranks, in place (no-op in a single process)."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t.div_(dist.get_world_size())
    return t


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's flag on every rank (e.g. 'stop requested'); the flag itself in a single process."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([1 if flag else 0], dtype=torch.int32)        # CPU: gloo carries it
    dist.broadcast(t, src=0)
    return bool(t.item())


def broadcast_object(obj=None):
    """Rank 0's picklable object on every rank (rank 0's own in a single process)."""
    if not is_distributed():
        return obj
    box = [obj if rank() == 0 else None]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


def all_gather_object(obj) -> list:
    """[rank 0's obj, rank 1's obj, ...] on every rank ([obj] in a single process)."""
    if not is_distributed():
        return [obj]
    out = [None] * world()
    dist.all_gather_object(out, obj)     # pickles to CPU tensors (gloo) when the group has a CPU backend
    return out


def sync_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (one broadcast per tensor)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def sync_buffers(module: torch.nn.Module) -> None:
    """Copy rank 0's buffers (e.g. batch-norm running statistics) to every rank."""
    if not is_distributed():
        return
    with torch.no_grad():
        for t in module.buffers():
            dist.broadcast(t.data, src=0)


def state_digest(state) -> str:
    """SHA-256 (first 16 hex digits) of a module's state_dict, or of a state dict itself (names,
    dtypes, shapes, bytes): equal on every rank iff the replicas are identical."""
    import hashlib
    if isinstance(state, torch.nn.Module):
        state = state.state_dict()
    h = hashlib.sha256()
    for k, v in sorted(state.items()):
        if isinstance(v, torch.Tensor):
            a = v.detach().to("cpu").contiguous()
            h.update(pickle.dumps((k, str(a.dtype), tuple(a.shape))))
            h.update(a.reshape(-1).view(torch.uint8).numpy().tobytes() if a.numel() else b"")
    return h.hexdigest()[:16]


class NullStore:
    """What ranks other than 0 get instead of the RunStore: every write is dropped, heartbeat never
    asks to stop (rank 0 broadcasts that), and there are no checkpoints to list."""

    def heartbeat(self, *a, **k) -> bool:
        return False

    def checkpoints(self, *a, **k) -> list:
        return []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *a, **k: None
