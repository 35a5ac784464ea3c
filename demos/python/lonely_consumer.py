"""A consumer waits on a queue that nobody will ever fill: the producer left without
sending its sentinel. Under plain Python this hangs forever."""
import queue
import threading

tasks = queue.Queue()


def producer():
    for i in range(3):
        tasks.put(i)
    # forgot: tasks.put(None)


def consumer():
    while True:
        item = tasks.get()
        if item is None:
            break
        print("consumed", item)


p = threading.Thread(target=producer, name="Producer")
c = threading.Thread(target=consumer, name="Consumer")
p.start()
c.start()
p.join()
c.join()
print("done")
