"""The tutorials' unsynchronized counter, run as they run it, and once more with the race
made visible. Run by `threadlab race --python`; also runnable alone:

    python3 demos/python/race_counter.py 100000 2 5

Prints one JSON object per line: the interpreter first, then one per variant with the final
count of each run.
"""
import json
import sys
import threading

counter = 0


def add_one(x):
    return x + 1


def tutorial():
    # The tutorials' increment: `counter += 1` in a loop.
    global counter
    for _ in range(ITERATIONS):
        counter += 1


def split():
    # The same update with a call between the read and the write: a point where CPython
    # may switch threads.
    global counter
    for _ in range(ITERATIONS):
        value = counter
        value = add_one(value)
        counter = value


def run(target, threads):
    global counter
    counter = 0
    ts = [threading.Thread(target=target) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counter


if __name__ == "__main__":
    ITERATIONS = int(sys.argv[1])
    THREADS = int(sys.argv[2])
    RUNS = int(sys.argv[3])
    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    default = sys.getswitchinterval()
    print(json.dumps({"python": sys.version.split()[0], "gil": gil, "switch_interval": default}), flush=True)
    print(json.dumps({"variant": "counter += 1 (the tutorials')", "switch_interval": default,
                      "counts": [run(tutorial, THREADS) for _ in range(RUNS)]}), flush=True)
    sys.setswitchinterval(1e-5)
    print(json.dumps({"variant": "read; add_one(); write", "switch_interval": 1e-5,
                      "counts": [run(split, THREADS) for _ in range(RUNS)]}), flush=True)
