"""``flux.job.JobID``: job ids in every encoding (dec, hex, dothex, kvs, f58, words, emoji)."""

from fluxnb.runtime.job.jobid import JobID, id_encode, id_parse

__all__ = ["JobID", "id_encode", "id_parse"]
