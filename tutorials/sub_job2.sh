#!/bin/bash
# Level 2 of the hierarchy: run an ordinary job in the innermost instance.
flux run -N1 sleep 5
