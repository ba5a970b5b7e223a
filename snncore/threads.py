"""One thread budget per run, followed by every compute library in it (torch, Numba, OpenMP, BLAS).

Why: the fused LIF kernels (Numba, OpenMP threading layer) started a worker pool sized to all cores
whatever OMP_NUM_THREADS said, and OpenMP workers wait by spinning. Beside any other busy process (a
browser, the Streamlit server, a second run) the spinning workers starved each other: the default
digits run took 3-4 s instead of 1.4 s beside one busy core, and 12-60 s from the app.

The budget is chosen once per process, before torch or Numba load (:func:`set_env`: the CLI calls
it first thing, the app's launcher passes the same variables to a run's process), then applied to
the libraries once they are loaded (:func:`apply`), and recorded in the run (:func:`record`).

    SNNCORE_THREADS   the budget (a whole number >= 1); else OMP_NUM_THREADS; else the usable cores
    OMP_WAIT_POLICY   PASSIVE unless set: idle workers sleep instead of spinning (libgomp, also for
                      Numba's 'omp' layer; KMP_BLOCKTIME=0 the same for Intel's OpenMP)

No torch import here: :func:`set_env` must run before torch loads.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

ENV = "SNNCORE_THREADS"
# thread-count variables read when each library loads; all get the budget
COUNT_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
# idle OpenMP workers sleep at once rather than spin (the cause of the collapse under contention)
WAIT_VARS = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


# this process's values of the variables above before set_env (None: unset); the bench's plain
# reference runs with these, i.e. with the libraries' defaults or what the user set
ORIGINAL_ENV: dict[str, str | None] = {}


class ThreadsError(ValueError):
    """SNNCORE_THREADS is not a whole number >= 1."""


def cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset or a container)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _parse(name: str, raw: str) -> int:
    try:
        n = int(raw.strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ThreadsError(f"{name}={raw!r}: expected a whole number of threads >= 1")
    return n


def budget(env: dict | None = None) -> tuple[int, str]:
    """(threads, where the number came from): SNNCORE_THREADS, else OMP_NUM_THREADS (what the app's
    launcher and many schedulers set), else all usable cores. A bad SNNCORE_THREADS raises
    ThreadsError; a bad OMP_NUM_THREADS (not ours to police) is ignored."""
    env = os.environ if env is None else env
    if env.get(ENV, "").strip():
        return _parse(ENV, env[ENV]), ENV
    omp = env.get("OMP_NUM_THREADS", "").split(",")[0].strip()   # OpenMP allows a nested list "4,2"
    if omp:
        try:
            return _parse("OMP_NUM_THREADS", omp), "OMP_NUM_THREADS"
        except ThreadsError:
            pass
    return cores(), "cores"


def env_for(n: int) -> dict[str, str]:
    """The environment a process with budget n needs before its libraries load (launcher: a child's env)."""
    env = {ENV: str(n), **{k: str(n) for k in COUNT_VARS}}
    env.update({k: os.environ.get(k) or v for k, v in WAIT_VARS.items()})   # a user's own choice stays
    return env


def set_env() -> int:
    """Set this process's budget into the environment; call before torch / Numba / numpy load.
    Returns the budget. Libraries loaded already would not see it: :func:`record` names them."""
    n, source = budget()
    loaded = [m for m in ("torch", "numba", "numpy") if m in sys.modules]
    for k in (ENV, *COUNT_VARS, *WAIT_VARS):
        ORIGINAL_ENV.setdefault(k, os.environ.get(k))
    os.environ.setdefault(ENV + "_SOURCE", source)      # the launcher's "app" stays
    os.environ.update(env_for(n))
    if loaded:
        os.environ[ENV + "_LATE"] = ",".join(loaded)
    return n


def apply(n: int | None = None) -> dict:
    """Give torch, Numba and the BLAS / OpenMP pools the budget (torch and Numba loaded now);
    returns what each library reports afterwards (see :func:`record`)."""
    import torch
    n = budget()[0] if n is None else n
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        import numba
        # the pool was sized when Numba loaded (NUMBA_NUM_THREADS): it cannot grow past that
        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(n)                 # OpenBLAS in numpy / scipy, every OpenMP runtime loaded
    except ImportError:
        pass
    return record(n)


def record(n: int | None = None) -> dict:
    """The budget and what each library uses now (JSON-able; stored in the run's summary)."""
    import torch
    n = budget()[0] if n is None else n
    out = {"budget": n, "source": os.environ.get(ENV + "_SOURCE") or budget()[1], "cores": cores(),
           "torch": torch.get_num_threads(),
           "wait_policy": os.environ.get("OMP_WAIT_POLICY", "")}
    try:
        import numba
        out["numba"] = numba.get_num_threads()
        out["numba_pool"] = numba.config.NUMBA_NUM_THREADS
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_info
        out["blas_openmp"] = sorted({int(p["num_threads"]) for p in threadpool_info()})
    except ImportError:
        pass
    if os.environ.get(ENV + "_LATE"):
        out["set_after_load"] = os.environ[ENV + "_LATE"]   # env came too late for these
    return out


@contextmanager
def torch_threads(n: int):
    """Temporarily set torch's intra-op thread count (restored on exit), never above the budget;
    n <= 0 leaves it alone. For tiny tensors (the Rule Lab, IP2's protocol), where a 2-thread pool
    on a busy 2-core box made one small matmul ~1000x slower."""
    import torch
    old = torch.get_num_threads()
    if n > 0:
        try:
            n = min(n, budget()[0])
        except ThreadsError:
            pass
    if n > 0 and n != old:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
