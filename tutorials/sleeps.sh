#!/bin/bash
# Queue four one-node jobs in whatever instance FLUX_URI names (use it with
# flux proxy JOBID ./sleeps.sh), then wait until that instance's queue is empty.
for i in 1 2 3 4; do
    flux submit -N1 sleep 1
done
flux queue drain
echo "all four sleeps finished"
