"""Run one command from a small process; print its wall time, peak memory and exit code.

The runner's own memory would otherwise count in the child's peak: Linux carries the
parent's high-water mark across fork and exec into ``ru_maxrss``. This launcher is a few
megabytes, less than any Python process it measures.

    python bench/launch.py OUT ERR ARGV...
"""
import json
import os
import subprocess
import sys
import time

out, err, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(out, "wb") as o, open(err, "wb") as e:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "maxrss_kb": usage.ru_maxrss,
                  "cpu": usage.ru_utime + usage.ru_stime,
                  "rc": os.waitstatus_to_exitcode(status)}))
