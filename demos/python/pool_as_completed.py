"""A ThreadPoolExecutor with as_completed: results arrive as each task finishes."""
import time
from concurrent.futures import ThreadPoolExecutor, as_completed


def square(n):
    time.sleep(0.01 * (5 - n))
    return n * n


with ThreadPoolExecutor(max_workers=3, thread_name_prefix="Pool") as pool:
    futures = {pool.submit(square, n): n for n in range(5)}
    results = {}
    for f in as_completed(futures):
        results[futures[f]] = f.result()
print("squares:", [results[n] for n in range(5)])
