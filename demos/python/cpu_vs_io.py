"""The tutorials' CPU-bound and I/O-bound snippets, timed with 1..T threads.

Run by `threadlab cpu-vs-io --python` (which passes the same thread counts and work it
uses itself); also runnable alone:

    python3 demos/python/cpu_vs_io.py 1,2,4,8 0.3 8 0.1 3

Prints one JSON object per line: first the interpreter, then one per timing. The CPU-bound
timings come in ROUNDS rounds (the last argument, 1 if left out), each round over every
thread count, so a moment when the machine was busy spoils one timing, not a whole count:
the reader keeps each count's best.
"""
import json
import sys
import threading
import time


def cpu_bound(n):
    # The tutorials' CPU-bound task: pure Python arithmetic, holding the GIL throughout.
    total = 0
    for i in range(n):
        total += i * i
    return total


def io_bound(secs):
    # The tutorials' I/O-bound stand-in: time.sleep releases the GIL, as a socket read does.
    time.sleep(secs)


def timed(threads, tasks, work, arg):
    """Runs `tasks` calls of work(arg) on `threads` threads; returns the wall time."""
    per_thread = [tasks // threads + (1 if i < tasks % threads else 0) for i in range(threads)]

    def run(k):
        for _ in range(k):
            work(arg)

    ts = [threading.Thread(target=run, args=(k,)) for k in per_thread]
    start = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - start


def main():
    counts = [int(c) for c in sys.argv[1].split(",")]
    cpu_secs = float(sys.argv[2])  # single-threaded CPU time to aim for, in total
    tasks = int(sys.argv[3])
    io_secs = float(sys.argv[4])  # one I/O task's wait
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    print(json.dumps({"python": sys.version.split()[0], "gil": gil}), flush=True)
    # Calibrate: how many iterations make one task's share of cpu_secs.
    n = 200_000
    took = timed(1, 1, cpu_bound, n)
    per_task = max(1000, int(n * (cpu_secs / tasks) / max(took, 1e-6)))
    runs = [("cpu", cpu_bound, per_task, r) for r in range(rounds)]
    runs.append(("io", io_bound, io_secs, 0))
    for kind, work, arg, r in runs:
        # Each round starts at another count, so no count is always timed first.
        for c in counts[r % len(counts):] + counts[:r % len(counts)]:
            secs = timed(c, tasks, work, arg)
            print(json.dumps({"kind": kind, "threads": c, "secs": secs}), flush=True)


if __name__ == "__main__":
    main()
