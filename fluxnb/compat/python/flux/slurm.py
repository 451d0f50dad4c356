"""``flux.slurm``: what flux-core asks Slurm about the allocation it runs in:
``slurm_timeleft(jobid)`` (from ``squeue -o %L``), and the parser of Slurm's time
strings (``D-HH:MM:SS``, ``HH:MM:SS``, ``MM:SS``)."""

import re
import subprocess

#: the %L values that mean no limit (or none known)
SLURM_TIME_UNLIMITED = {"UNLIMITED", "NOT_SET", "INVALID"}

_TIME = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$")


def _parse_slurm_time(timestr):
    """Seconds in a Slurm time string; None if it is unlimited or not a time."""
    timestr = timestr.strip()
    if timestr in SLURM_TIME_UNLIMITED:
        return None
    m = _TIME.match(timestr)
    if m is None:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    if m.group(1) and m.group(2) is None:
        return None  # D-MM:SS is not one of Slurm's forms
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def slurm_timeleft(jobid):
    """The seconds left to Slurm job ``jobid`` (None: no limit). RuntimeError if
    squeue is not found or fails."""
    try:
        result = subprocess.run(["squeue", "--noheader", f"--job={jobid}", "-o", "%L"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    except FileNotFoundError:
        raise RuntimeError("squeue not found in PATH") from None
    if result.returncode != 0:
        raise RuntimeError(f"squeue failed: {result.stderr.decode('utf-8')}")
    return _parse_slurm_time(result.stdout.decode("utf-8"))


__all__ = ["slurm_timeleft", "SLURM_TIME_UNLIMITED"]
