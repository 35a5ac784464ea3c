"""Cost per operation: an uncontended Lock acquire/release pair and a Queue put/get pair."""
import queue
import threading
import time

N = 100_000
lock = threading.Lock()
t0 = time.perf_counter()
for _ in range(N):
    lock.acquire()
    lock.release()
lock_ns = (time.perf_counter() - t0) / N * 1e9
q = queue.Queue()
t0 = time.perf_counter()
for i in range(N):
    q.put(i)
    q.get()
queue_ns = (time.perf_counter() - t0) / N * 1e9
print(f"lock pair {lock_ns:.0f} ns, queue pair {queue_ns:.0f} ns")
