"""``flux.job.executor``: ``FluxExecutor`` (concurrent.futures) over fluxnb's executor."""

from fluxnb.job.executor import FluxExecutor, FluxExecutorFuture

__all__ = ["FluxExecutor", "FluxExecutorFuture"]
