"""A pool of one worker: its task submits a second task to the same pool and waits for its
result. The second task waits in the queue for a free worker, and the only worker is the one
waiting for it. Under plain Python this hangs forever."""
from concurrent.futures import ThreadPoolExecutor

pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="Worker")


def inner():
    return 1


def outer():
    return pool.submit(inner).result() + 1  # waits for a task queued behind itself


print(pool.submit(outer).result())
