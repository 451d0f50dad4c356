#!/bin/bash
# A batch script: flux batch runs it as the initial program of a new instance
# that owns only the resources the batch job was given.  The optional argument
# is how long each parallel step sleeps (seconds).
secs=${1:-2}

echo "Batch job started"
echo "Resources this batch job owns:"
flux resource list

echo "Two parallel steps, each 2 tasks on 2 nodes (one core per task), sleeping ${secs}s"
flux run -N 2 -n 2 sleep "$secs"
flux run -N 2 -n 2 sleep "$secs"
echo "Batch job done"
