"""A producer and two consumers share a bounded queue; one sentinel per consumer ends them."""
import queue
import threading

SENTINEL = None
jobs = queue.Queue(maxsize=3)
done = []


def producer():
    for i in range(10):
        jobs.put(i)
    for _ in range(2):
        jobs.put(SENTINEL)


def consumer():
    while True:
        item = jobs.get()
        if item is SENTINEL:
            jobs.task_done()
            break
        done.append(item * item)
        jobs.task_done()


threads = [threading.Thread(target=producer, name="Producer")]
threads += [threading.Thread(target=consumer, name=f"Consumer-{i}") for i in (1, 2)]
for t in threads:
    t.start()
jobs.join()
for t in threads:
    t.join()
print("consumed:", sorted(done))
