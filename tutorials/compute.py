#!/usr/bin/env python3
"""Stand-in for a compute kernel: keep one core busy-ish for N seconds (default 1)."""
import sys
import time

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
time.sleep(seconds)
print(f"compute.py: worked for {seconds:g} seconds")
