"""The fixed transfer: every teller locks the account with the lower id first, so no
cycle can form."""
import threading
import time


class Account:
    def __init__(self, ident, balance):
        self.ident = ident
        self.balance = balance
        self.lock = threading.Lock()


a = Account(1, 100)
b = Account(2, 100)


def transfer(source, target, amount):
    first, second = sorted((source, target), key=lambda acc: acc.ident)
    with first.lock:
        time.sleep(0.05)
        with second.lock:
            source.balance -= amount
            target.balance += amount


t1 = threading.Thread(target=transfer, args=(a, b, 10), name="Teller-1")
t2 = threading.Thread(target=transfer, args=(b, a, 20), name="Teller-2")
t1.start()
t2.start()
t1.join()
t2.join()
print("balances:", a.balance, b.balance)
print("total:", a.balance + b.balance)
