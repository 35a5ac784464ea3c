"""Five philosophers, five forks; each takes the left fork, then the right one. When all
hold their left fork at once, nobody can eat: a ring of waits."""
import threading
import time

N = 5
forks = [threading.Lock() for _ in range(N)]
ready = threading.Barrier(N)


def philosopher(i):
    left, right = forks[i], forks[(i + 1) % N]
    with left:
        ready.wait()  # every philosopher holds a left fork now
        time.sleep(0.05)
        with right:
            print(f"philosopher {i} eats")


diners = [threading.Thread(target=philosopher, args=(i,), name=f"Philosopher-{i}") for i in range(N)]
for d in diners:
    d.start()
for d in diners:
    d.join()
print("dinner over")
