"""``--engine dask``: the cluster a run uses and the executor of scenario chunks.

Without ``--scheduler`` siteopt starts a ``distributed.LocalCluster`` of one single-
threaded worker process per core (dask-cuda's ``LocalCUDACluster``, one worker per GPU,
when ``--backend cupy`` and dask-cuda is importable); with ``--scheduler ADDRESS`` it
connects to that scheduler, whose workers need siteopt installed. Either way one client
per (address, backend kind) serves the whole process and is closed at exit.

Where the work goes
-------------------
* solve and evaluate: the valuation's scenario chunks and the per-scenario NPVs of the
  plan and baselines are tasks (siteopt.kernels.dask_chunks); the MILP, the expected
  cash flows (cashflows.csv) and the report's tornado run here.
* sweep (two points or more) and whatif: each point's whole solve, valuation and MILP, is
  one task, the valuation running locally on its worker. Points are independent, so
  they run side by side with no gather between the passes; a point's numbers are those
  of ``siteopt solve --set`` on the local engine. The points share no valuation cache and
  no MILP warm start (a sweep on the local engine has both).
* breakeven (``breakeven(..., engine="dask")``): the whole bisection is one task.

Whole solves as tasks live above the pipeline, in :mod:`siteopt.app.distributed`.
``distributed`` is imported only there, here and in siteopt.kernels.dask_chunks, inside the
functions that need it; without it ``--engine dask`` exits 2 with the pip command.
"""

from __future__ import annotations

import atexit
from types import ModuleType
from typing import TYPE_CHECKING, Any

from siteopt.kernels.chunks import usable_cores
from siteopt.model.errors import InputError

if TYPE_CHECKING:
    from siteopt.kernels.dask_chunks import DaskChunks

INSTALL_HINT = "pip install 'siteopt[dask]'"
CONNECT_TIMEOUT_S = 5.0
# Dask's nannies set MALLOC_TRIM_THRESHOLD_, which stops glibc from adapting its mmap
# threshold: every chunk-sized temporary is then mmapped and page-faulted afresh, about
# twice as slow for this workload. A fixed 256 MiB threshold keeps them on the heap.
WORKER_MALLOC_MMAP_THRESHOLD = 256 << 20

_CLIENTS: dict[tuple[str | None, bool], Any] = {}


def require_distributed() -> ModuleType:
    """The ``distributed`` module, or exit 2 with the install command."""
    try:
        import distributed
    except ImportError:
        raise InputError(
            f"--engine dask needs Dask's distributed scheduler, which is not installed; "
            f"run: {INSTALL_HINT}"
        ) from None
    return distributed


def connect(scheduler: str | None, backend: str) -> Any:
    """The process's ``distributed.Client`` for ``scheduler``, started on first use.

    Parameters
    ----------
    scheduler : str or None
        A scheduler address such as ``tcp://10.0.0.5:8786``; None starts a local cluster.
    backend : {"auto", "numpy", "cupy"}
        ``"cupy"`` without an address starts a ``LocalCUDACluster`` when dask-cuda is
        importable.

    Raises
    ------
    InputError
        ``distributed`` is not installed, or no scheduler answers at ``scheduler`` within
        CONNECT_TIMEOUT_S (exit 2).
    """
    distributed = require_distributed()
    key = (scheduler, scheduler is None and backend == "cupy")
    client = _CLIENTS.get(key)
    if client is not None and client.status == "running":
        return client
    if scheduler is None:
        client = distributed.Client(start_local_cluster(cuda=key[1]), set_as_default=False)
    else:
        client = _remote_client(distributed, scheduler)
    _CLIENTS[key] = client
    return client


def _remote_client(distributed: ModuleType, scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler`` that has at least one worker."""
    _probe(scheduler)
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, ValueError, TypeError) as exc:  # TimeoutError is an OSError
        raise InputError(f"--scheduler {scheduler}: {_reason(exc)}") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError:
        client.close()
        raise InputError(
            f"--scheduler {scheduler}: the scheduler has no workers; start some with "
            f"`dask worker {scheduler}`"
        ) from None
    return client


def _probe(scheduler: str) -> None:
    """Open and close one connection to ``scheduler``, so that a bad address fails fast
    and plainly (a ``Client`` that fails to connect hangs on its way out)."""
    import asyncio

    from distributed.comm import connect as open_comm
    from distributed.security import Security

    async def probe() -> None:
        args = Security().get_connection_args("client")  # TLS settings from Dask's config
        comm = await open_comm(scheduler, timeout=CONNECT_TIMEOUT_S, **args)
        await comm.close()

    try:
        asyncio.run(probe())
    except ValueError as exc:
        raise InputError(
            f"--scheduler {scheduler}: not a scheduler address ({_reason(exc)}); "
            "expected e.g. tcp://host:8786"
        ) from None
    except (OSError, TypeError) as exc:
        raise InputError(
            f"--scheduler {scheduler}: no Dask scheduler answered within "
            f"{CONNECT_TIMEOUT_S:g} s ({_reason(exc)}); start one with `dask scheduler` "
            "and `dask worker ADDRESS`, or drop --scheduler to start a local cluster"
        ) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def start_local_cluster(n_workers: int | None = None, *, cuda: bool = False) -> Any:
    """A LocalCluster of single-threaded worker processes, or a LocalCUDACluster.

    Parameters
    ----------
    n_workers : int, optional
        Worker processes [default: one per core this process may run on]; ignored by
        the CUDA cluster, which starts one worker per visible GPU.
    cuda : bool
        Start dask-cuda's LocalCUDACluster when dask-cuda is importable.
    """
    import dask

    environ = "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_"
    with dask.config.set({environ: WORKER_MALLOC_MMAP_THRESHOLD}):
        if cuda:
            try:
                from dask_cuda import LocalCUDACluster
            except ImportError:
                pass
            else:
                return LocalCUDACluster(dashboard_address=":0")
        from distributed import LocalCluster

        return LocalCluster(
            n_workers=n_workers or usable_cores(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
        )


def close_all() -> None:
    """Close every client this process opened, and the local clusters it started."""
    while _CLIENTS:
        _, client = _CLIENTS.popitem()
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()


atexit.register(close_all)


def chunk_executor(engine: str, scheduler: str | None, backend: str) -> DaskChunks | None:
    """Where the valuation's chunks run: None for ``--engine local``."""
    if engine != "dask":
        return None
    from siteopt.kernels.dask_chunks import DaskChunks

    return DaskChunks(connect(scheduler, backend))
