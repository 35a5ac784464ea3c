"""The racy counter: read, pause, write back. Threads overwrite each other's updates."""
import threading
import time

counter = 0


def increment(times):
    global counter
    for _ in range(times):
        value = counter        # read
        time.sleep(0.0001)     # another thread runs here
        counter = value + 1    # write back: the other thread's update is lost


threads = [threading.Thread(target=increment, args=(50,)) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("expected 200")
print("lost updates:", "yes" if counter < 200 else "no")
