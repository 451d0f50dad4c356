#!/bin/bash
# Level 1 of a hierarchy: from inside a batch job, submit another batch job
# (sub_job2.sh), which makes a nested instance of its own, then wait for it.
flux batch -N1 ./sub_job2.sh
flux queue drain
