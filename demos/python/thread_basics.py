"""Thread basics: start three named threads, each works a while, then join them all."""
import threading
import time

print_lock = threading.Lock()  # print() writes the text and the newline apart


def say(text):
    with print_lock:
        print(f"{threading.current_thread().name}: {text}")


def worker(n):
    say(f"starting task {n}")
    time.sleep(0.05 * n)
    say(f"task {n} done")


threads = [threading.Thread(target=worker, args=(i,), name=f"Worker-{i}") for i in range(1, 4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("all workers joined")
