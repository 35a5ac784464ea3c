"""Three runners wait at a Barrier; none starts the next phase before all arrive."""
import threading
import time

gate = threading.Barrier(3)
log = []
log_lock = threading.Lock()


def runner(i):
    for phase in (1, 2):
        time.sleep(0.02 * i)
        with log_lock:
            log.append((phase, i))
        gate.wait()


threads = [threading.Thread(target=runner, args=(i,), name=f"Runner-{i}") for i in (1, 2, 3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
phases = [p for p, _ in log]
print("phases in order:", phases == sorted(phases))
