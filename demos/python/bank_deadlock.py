"""Two tellers move money between the same two accounts in opposite directions. Each
locks the account it takes from, then the one it pays into: a deadlock."""
import threading
import time


class Account:
    def __init__(self, name, balance):
        self.name = name
        self.balance = balance
        self.lock = threading.Lock()


a = Account("A", 100)
b = Account("B", 100)


def transfer(source, target, amount):
    with source.lock:
        time.sleep(0.1)  # both tellers now hold one lock each
        with target.lock:
            source.balance -= amount
            target.balance += amount


t1 = threading.Thread(target=transfer, args=(a, b, 10), name="Teller-1")
t2 = threading.Thread(target=transfer, args=(b, a, 20), name="Teller-2")
t1.start()
t2.start()
t1.join()
t2.join()
print("balances:", a.balance, b.balance)
