"""Workers loop until an Event asks them to stop; the main thread sets it and joins them."""
import threading

stop = threading.Event()
rounds = {}


def worker(name):
    n = 0
    while not stop.wait(0.02):
        n += 1
    rounds[name] = n


workers = [threading.Thread(target=worker, args=(f"Worker-{i}",), name=f"Worker-{i}") for i in (1, 2)]
for w in workers:
    w.start()
stop.wait(0.2)
stop.set()
for w in workers:
    w.join()
print("workers stopped:", sorted(rounds))
print("every worker looped:", all(n > 0 for n in rounds.values()))
