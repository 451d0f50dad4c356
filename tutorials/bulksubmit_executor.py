#!/usr/bin/env python3
"""Submit many copies of one command through FluxExecutor and report the rates.

    python bulksubmit_executor.py [-n NJOBS] COMMAND [ARGS...]

Each ``executor.submit`` returns a future at once; ``future.jobid()`` blocks until
the instance has accepted that job and ``future.result()`` until it has finished.
"""
import argparse
import time

from fluxnb.job import FluxExecutor, JobspecV1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--njobs", type=int, default=100, help="how many jobs (default 100)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command each job runs")
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("give a command to run, e.g. /bin/true")

    start = time.perf_counter()
    with FluxExecutor() as executor:
        jobspec = JobspecV1.from_command(args.command)
        futures = [executor.submit(jobspec) for _ in range(args.njobs)]
        for fut in futures:  # the job id arrives once the instance has taken the job
            fut.jobid()
        submitted = time.perf_counter() - start
        print(f"submitted {args.njobs} jobs in {submitted:.2f}s "
              f"({args.njobs / submitted:.1f} job/s)")
        failed = sum(1 for fut in futures if fut.result() != 0)
    done = time.perf_counter() - start
    print(f"ran {args.njobs} jobs in {done:.2f}s ({args.njobs / done:.1f} job/s), "
          f"{failed} failed")


if __name__ == "__main__":
    main()
