# threadlab's shim for `threadlab py`: loaded as `sitecustomize` from a private folder before
# the learner's script, it wraps what the tutorials use (threading's Thread, Lock, RLock,
# Condition, Semaphore, BoundedSemaphore, Event, Barrier, Timer; queue's Queue, LifoQueue,
# PriorityQueue; concurrent.futures' Future) and reports each operation to threadlab over a
# private socket, one line per event (the wire format is in src/py/wire.rs, tested there):
#
#     <monotonic ns> <thread ident> <op> <fields...>
#
# Every blocking call waits in slices (a lock's acquire, a get, a wait, a join), so that a
# wait threadlab finds hopeless can raise `threadlab.DeadlockError` in the thread that made
# it. Each slice waits on what lasts between slices (the lock, the queue's items, the event's
# flag, a Condition's waiter lock), so no release, item or notify is ever missed.
# Primitives made by the standard library itself (a Queue's own lock, a Thread's own Event)
# are left plain: only the program's own are reported.
import os
import sys


def _install():
    path = os.environ.pop("THREADLAB_PY_SOCKET", None)
    here = os.path.dirname(os.path.abspath(__file__))
    # The learner's environment as they had it: child processes run unobserved.
    for var in ("PYTHONPATH",):
        old = os.environ.pop("THREADLAB_PY_OLD_" + var, None)
        if old is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    # The interpreter's own sitecustomize, if it has one, still runs.
    try:
        import importlib.machinery
        import importlib.util

        spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception:
        pass
    if not path:
        return
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.connect(path)
    if sys.version_info < (3, 8):
        # threadlab says so in one line; the program does not run unobserved.
        sock.sendall(("0 0 X %d.%d\n" % sys.version_info[:2]).encode())
        os._exit(1)
    import _thread
    import threading
    import time

    _wire(sock, _thread, threading, time, os.environ.pop("THREADLAB_PY_POLICY", "raise"))


def _wire(sock, _thread, threading, time, policy):
    import types

    mono = time.monotonic_ns
    ident = _thread.get_ident
    getframe = sys._getframe
    buf = []
    send_lock = _thread.allocate_lock()
    verdicts = {}
    in_barrier = {}
    state = {"dead": False, "next": 0, "unsynced": False}
    SLICE = 0.02
    # The interpreter's library and installed packages: what they make is not the program's.
    lib = tuple(
        os.path.abspath(p) + os.sep
        for p in [os.path.dirname(os.__file__)]
        + [p for p in sys.path if "site-packages" in p or "dist-packages" in p]
    )
    script_dir = os.path.abspath(os.path.dirname(sys.argv[0] or ".")) + os.sep if sys.argv else ""

    class DeadlockError(RuntimeError):
        """A wait threadlab found hopeless: a cycle of waits, or a wait nobody can end."""

    DeadlockError.__module__ = "threadlab"
    DeadlockError.__qualname__ = "DeadlockError"

    mod = type(sys)("threadlab")
    mod.DeadlockError = DeadlockError
    sys.modules["threadlab"] = mod

    def flush():
        with send_lock:
            n = len(buf)
            if not n or state["dead"]:
                return
            data = "".join(buf[:n])
            del buf[:n]
            state["unsynced"] = True
            try:
                sock.sendall(data.encode("utf-8", "replace"))
            except OSError:
                state["dead"] = True

    def emit(text):
        buf.append(f"{mono()} {ident()} {text}\n")
        if len(buf) >= 256:
            flush()

    shim_file = _install.__code__.co_filename

    def outside(f):
        """The first frame at or above `f` that is not the shim's own."""
        while f is not None and f.f_code.co_filename == shim_file:
            f = f.f_back
        return f

    sites = {}

    def site_of(f):
        """`file:line` of frame `f` (the first outside the shim), cached by the instruction
        (`f_lineno` is computed from a table on each read: the cache saves it)."""
        while f.f_code.co_filename == shim_file:
            f = f.f_back
        key = (f.f_code, f.f_lasti)
        site = sites.get(key)
        if site is None:
            site = sites[key] = f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"
        return site

    def where(depth):
        return site_of(getframe(depth))

    def users(depth):
        """Whether the primitive being made is the program's own (not the library's)."""
        name = getframe(depth).f_code.co_filename
        if name.startswith("<"):
            return False
        name = os.path.abspath(name)
        return name.startswith(script_dir) or not name.startswith(lib)

    unnamed = {}

    def new_id(kind, depth):
        if not users(depth + 1):
            return None
        state["next"] += 1
        pid = state["next"]
        unnamed[pid] = (kind, site_of(getframe(depth)))
        return pid

    def named(obj, pid, depth):
        """Tells threadlab the primitive's name the first time it is used: the variable that
        holds it where one can be found, else its kind and the line that made it."""
        entry = unnamed.pop(pid, None)
        if entry is not None:
            kind, made = entry
            name = find_name(obj, outside(getframe(depth + 1))) or "%s@%s" % (kind, made)
            emit("N %d %s %s %s" % (pid, kind, made, name))

    def find_name(obj, frame):
        # The module's names first: they are the same from every thread (a local `source`
        # is account A in one teller and account B in the other).
        for scope in (frame.f_globals, frame.f_locals):
            found = find_in(obj, scope)
            if found:
                return found
        return None

    def find_in(obj, scope):
        for k, v in list(scope.items()):
            if v is obj:
                return k
        for k, v in list(scope.items()):
            if isinstance(v, (list, tuple)):
                for i, x in enumerate(v):
                    if x is obj:
                        return "%s[%d]" % (k, i)
            elif isinstance(v, dict):
                for key, x in list(v.items()):
                    if x is obj:
                        return "%s[%r]" % (k, key)
            elif hasattr(v, "__dict__") and not isinstance(v, type):
                try:
                    items = list(vars(v).items())
                except TypeError:
                    continue
                for a, x in items:
                    if x is obj:
                        # A reported Condition's own lock: CPython's name for it.
                        return "%s.%s" % (k, "_lock" if a == "_tl_lock" else a)
        return None

    def wait(pid, kind, by, timeout, attempt, site):
        """One reported wait: sliced `attempt(seconds)` until it succeeds (True), the
        program's timeout runs out (False), or threadlab refuses it (DeadlockError)."""
        me = ident()
        tmo = "-" if timeout is None else "%.3f" % (timeout * 1000)
        emit("W %d %s %s %s %s" % (pid, kind, by, tmo, site))
        judged(me)
        why = verdicts.pop(me, None)
        if why is not None:
            # Refused before it began: it would have closed a cycle.
            emit("D refused")
            flush()
            raise DeadlockError(why) from None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE
            if deadline is not None:
                left = max(0.0, min(SLICE, deadline - time.monotonic()))
            try:
                got = attempt(left)
            except BaseException:
                emit("D gave-up")
                flush()
                raise
            if got:
                emit("D ok")
                return True
            why = verdicts.pop(me, None)
            if why is not None:
                emit("D refused")
                flush()
                raise DeadlockError(why) from None
            if deadline is not None and time.monotonic() >= deadline:
                emit("D timeout")
                return False
            # Still blocked, having looked: a signal before now was not for this thread. Told
            # first, then looked at once more: a signal that came as the slice ran out is
            # taken now, and one after the look comes after it in the stream.
            emit("K")
            flush()
            if attempt(0):
                emit("D ok")
                return True

    def lines():
        rest = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            rest += chunk
            *whole, rest = rest.split(b"\n")
            for line in whole:
                yield line.decode("utf-8", "replace")

    answers = {}
    awaiting = set()

    def judged(me):
        """Sends the wait just told and waits (at most a second) for threadlab's answer: `ok`,
        or a refusal (then in `verdicts`). A wait that would close a cycle is refused before
        the thread blocks at all."""
        answer = answers.get(me)
        if answer is None:
            answer = answers[me] = _thread.allocate_lock()
            answer.acquire()
        awaiting.add(me)
        flush()
        if not state["dead"] and not answer.acquire(True, 1.0):
            emit("P threadlab did not answer a wait within a second: the program went on")
        awaiting.discard(me)

    def reader():
        for line in lines():
            tid, _, why = line.partition(" ")
            try:
                tid = int(tid)
            except ValueError:
                continue
            if why != "ok":
                verdicts[tid] = why.replace("\\n", "\n")
                b = in_barrier.get(tid)
                if b is not None:
                    b.abort()
            answer = answers.get(tid)
            if tid in awaiting and answer is not None and answer.locked():
                answer.release()

    class Synced:
        """sys.stdout or sys.stderr, each write held until threadlab has told every event
        before it (with -v): the narrative and the program's output in the order they
        happened."""

        def __init__(self, inner):
            self._inner = inner

        def write(self, text):
            if (buf or state["unsynced"]) and not state["dead"]:
                emit("Y")
                judged(ident())
                state["unsynced"] = False
            return self._inner.write(text)

        def __getattr__(self, name):
            return getattr(self._inner, name)

    if os.environ.pop("THREADLAB_PY_SYNC", None) == "1":
        for stream in ("stdout", "stderr"):
            inner = getattr(sys, stream)
            if inner is not None:
                try:
                    inner.reconfigure(line_buffering=True)
                except (AttributeError, ValueError):
                    pass
                setattr(sys, stream, Synced(inner))

    # -- threads ---------------------------------------------------------------------------
    Thread = threading.Thread
    orig_inner = Thread._bootstrap_inner
    orig_join = Thread.join

    def _bootstrap_inner(self):
        cpu0 = time.thread_time_ns()
        emit("T %d %s" % (1 if self.daemon else 0, self.name))
        flush()
        try:
            orig_inner(self)
        finally:
            emit("E %d" % (time.thread_time_ns() - cpu0))
            flush()

    def join(self, timeout=None):
        if self.ident is None or self is threading.current_thread() or not self.is_alive():
            return orig_join(self, timeout)
        if timeout is not None and timeout <= 0:
            return orig_join(self, timeout)

        def attempt(t):
            orig_join(self, t)
            return not self.is_alive()

        wait(self.ident, "J", "-", timeout, attempt, where(2))

    Thread._bootstrap_inner = _bootstrap_inner
    Thread.join = join

    # -- locks -----------------------------------------------------------------------------
    OCondition, OEvent, OBarrier = threading.Condition, threading.Event, threading.Barrier
    orig_Lock = threading.Lock
    orig_RLock = threading.RLock

    class Lock:
        """threading.Lock, reported."""

        __slots__ = ("_lock", "_pid", "__weakref__")

        def __init__(self, _depth=1):
            self._lock = orig_Lock()
            self._pid = new_id("Lock", _depth + 1)

        def acquire(self, blocking=True, timeout=-1):
            pid = self._pid
            if self._lock.acquire(False):
                # The uncontended path, kept short: one line for the hold.
                if pid is not None:
                    if pid in unnamed:
                        named(self, pid, 1)
                    buf.append(f"{mono()} {ident()} H {pid} {site_of(getframe(1))}\n")
                    if len(buf) >= 256:
                        flush()
                return True
            if not blocking:
                return False
            if pid is None:
                return self._lock.acquire(True, timeout)
            named(self, pid, 1)
            s = site_of(getframe(1))
            t = None if timeout is None or timeout < 0 else timeout
            if wait(pid, "L", "-", t, lambda left: self._lock.acquire(True, left), s):
                emit(f"H {pid} {s}")
                return True
            return False

        def __enter__(self):
            return self.acquire()

        def release(self):
            pid = self._pid
            if pid is not None and self._lock.locked():
                buf.append(f"{mono()} {ident()} R {pid}\n")
            self._lock.release()

        def __exit__(self, *exc):
            self.release()

        def locked(self):
            return self._lock.locked()

        def _at_fork_reinit(self):
            self._lock._at_fork_reinit()

        def __repr__(self):
            return repr(self._lock).replace("_thread.lock", "threadlab Lock")

    class RLock:
        """threading.RLock, reported: a hold is one, however many times its owner re-enters."""

        def __init__(self, _depth=1):
            self._lock = orig_RLock()
            self._pid = new_id("RLock", _depth + 1)
            self._owner = None
            self._count = 0

        def _acquire(self, blocking, timeout, site):
            me = ident()
            if self._owner == me:
                self._lock.acquire()
                self._count += 1
                return True
            if self._lock.acquire(False):
                self._owner, self._count = me, 1
                if self._pid is not None:
                    named(self, self._pid, 2)
                    emit("H %d %s" % (self._pid, site()))
                return True
            if not blocking:
                return False
            t = None if timeout is None or timeout < 0 else timeout
            if self._pid is None:
                got = self._lock.acquire(True, -1 if t is None else t)
            else:
                named(self, self._pid, 2)
                s = site()
                got = wait(self._pid, "L", "-", t, lambda left: self._lock.acquire(True, left), s)
                if got:
                    emit("H %d %s" % (self._pid, s))
            if got:
                self._owner, self._count = me, 1
            return got

        def acquire(self, blocking=True, timeout=-1):
            return self._acquire(blocking, timeout, lambda: where(4))

        def __enter__(self):
            return self._acquire(True, -1, lambda: where(4))

        def release(self):
            if self._owner != ident():
                raise RuntimeError("cannot release un-acquired lock")
            self._count -= 1
            if self._count == 0:
                self._owner = None
                if self._pid is not None:
                    emit("R %d" % self._pid)
            self._lock.release()

        def __exit__(self, *exc):
            self.release()

        # What threading.Condition asks of its lock.
        def _is_owned(self):
            return self._owner == ident()

        def _release_save(self):
            saved = (self._owner, self._count)
            self._owner, self._count = None, 0
            return (self._lock._release_save(), saved)

        def _acquire_restore(self, state):
            inner, (owner, count) = state
            self._lock._acquire_restore(inner)
            self._owner, self._count = owner, count

        def __repr__(self):
            return "<threadlab RLock owner=%r count=%d>" % (self._owner, self._count)

    # The library's own locks stay plain (and keep what it asks of them, `_at_fork_reinit`).
    def lock_factory():
        return Lock(_depth=2) if users(2) else orig_Lock()

    def rlock_factory(*a, **k):
        return RLock(_depth=2) if users(2) else orig_RLock()

    # -- Condition -------------------------------------------------------------------------
    class Condition(OCondition):
        """OCondition, reported: a wait is a wait for a notify; its lock's holds and
        releases are the lock's."""

        def __init__(self, lock=None, _depth=1):
            self._tl_pid = new_id("Condition", _depth + 1)
            if lock is None:
                lock = RLock(_depth=_depth + 1) if self._tl_pid is not None else orig_RLock()
            self._tl_lock = lock
            OCondition.__init__(self, lock)
            if isinstance(lock, (Lock, RLock)):
                # The wait releases and retakes the plain lock inside; the holds are told here.
                self.acquire = lock.acquire
                self.release = lock.release
                self._release_save = self._tl_release_save
                self._acquire_restore = self._tl_acquire_restore
                self._is_owned = self._tl_is_owned

        def __enter__(self):
            return self._tl_lock.__enter__()

        def __exit__(self, *exc):
            return self._tl_lock.__exit__(*exc)

        def _tl_is_owned(self):
            lock = self._tl_lock
            if isinstance(lock, RLock):
                return lock._is_owned()
            if lock._lock.acquire(False):
                lock._lock.release()
                return False
            return True

        # Inside a reported wait the lock's release and retaking are told by `wait` itself,
        # once each, around the whole wait (not at every slice).
        def _tl_release_save(self):
            lock = self._tl_lock
            if isinstance(lock, RLock):
                return lock._release_save()
            lock._lock.release()
            return None

        def _tl_acquire_restore(self, saved):
            lock = self._tl_lock
            if isinstance(lock, RLock):
                lock._acquire_restore(saved)
            else:
                lock._lock.acquire()

        def wait(self, timeout=None):
            pid = self._tl_pid
            if pid is None:
                return OCondition.wait(self, timeout)
            if not self._is_owned():
                raise RuntimeError("cannot wait on un-acquired lock")
            named(self, pid, 1)
            site = where(2)
            # CPython's own wait, in slices on one waiter lock: a notify releases it whenever
            # it comes, between slices too, so none is ever missed.
            waiter = _thread.allocate_lock()
            waiter.acquire()
            self._waiters.append(waiter)
            lpid = getattr(self._tl_lock, "_pid", None)
            if lpid is not None:
                emit("R %d" % lpid)
            saved = self._release_save()
            got = False
            try:
                got = wait(pid, "S", "notify", timeout, lambda t: waiter.acquire(True, t), site)
                return got
            finally:
                self._acquire_restore(saved)
                if not got:
                    try:
                        self._waiters.remove(waiter)
                    except ValueError:
                        pass
                if lpid is not None:
                    emit("H %d %s" % (lpid, site))

        def wait_for(self, predicate, timeout=None):
            end = None if timeout is None else time.monotonic() + timeout
            result = predicate()
            while not result:
                left = None
                if end is not None:
                    left = end - time.monotonic()
                    if left <= 0:
                        break
                self.wait(left)
                result = predicate()
            return result

        def notify(self, n=1):
            if self._tl_pid is not None:
                named(self, self._tl_pid, 1)
                emit("S %d notify" % self._tl_pid)
            OCondition.notify(self, n)

        def notify_all(self):
            if self._tl_pid is not None:
                named(self, self._tl_pid, 1)
                emit("S %d notify" % self._tl_pid)
            OCondition.notify_all(self)

        notifyAll = notify_all

    # -- Semaphore, BoundedSemaphore -------------------------------------------------------
    def semaphore(base, kind):
        class Sem(base):
            def __init__(self, value=1, _depth=1):
                # First the base: BoundedSemaphore's __init__ calls threading's Semaphore,
                # this class's sibling, which would set the id as the library's.
                base.__init__(self, value)
                self._tl_pid = new_id(kind, _depth + 1)

            def acquire(self, blocking=True, timeout=None):
                pid = self._tl_pid
                if pid is None:
                    return base.acquire(self, blocking, timeout)
                named(self, pid, 1)
                if base.acquire(self, False):
                    emit("H %d %s" % (pid, where(2)))
                    return True
                if not blocking:
                    return False
                site = where(2)
                if wait(pid, "L", "-", timeout, lambda t: base.acquire(self, True, t), site):
                    emit("H %d %s" % (pid, site))
                    return True
                return False

            __enter__ = acquire

            def release(self, *n):
                if self._tl_pid is not None:
                    for _ in range(n[0] if n else 1):
                        emit("R %d" % self._tl_pid)
                base.release(self, *n)

            def __exit__(self, *exc):
                self.release()

        Sem.__name__ = Sem.__qualname__ = kind
        return Sem

    Semaphore = semaphore(threading.Semaphore, "Semaphore")
    BoundedSemaphore = semaphore(threading.BoundedSemaphore, "BoundedSemaphore")

    # -- Event, Barrier --------------------------------------------------------------------
    class Event(OEvent):
        def __init__(self, _depth=1):
            self._tl_pid = new_id("Event", _depth + 1)
            OEvent.__init__(self)

        def set(self):
            if self._tl_pid is not None:
                named(self, self._tl_pid, 1)
                emit("S %d set" % self._tl_pid)
            OEvent.set(self)

        def wait(self, timeout=None):
            pid = self._tl_pid
            if pid is None or self.is_set():
                return OEvent.wait(self, timeout)
            named(self, pid, 1)
            sup = OEvent.wait
            return wait(pid, "S", "set", timeout, lambda t: sup(self, t), where(2))

    class Barrier(OBarrier):
        def __init__(self, parties, action=None, timeout=None, _depth=1):
            self._tl_pid = new_id("Barrier", _depth + 1)
            OBarrier.__init__(self, parties, action, timeout)

        def wait(self, timeout=None):
            pid = self._tl_pid
            if pid is None:
                return OBarrier.wait(self, timeout)
            named(self, pid, 1)
            me = ident()
            tmo = "-" if timeout is None else "%.3f" % (timeout * 1000)
            emit("S %d arrive" % pid)
            emit("W %d S arrive %s %s" % (pid, tmo, where(2)))
            flush()
            in_barrier[me] = self
            try:
                n = OBarrier.wait(self, timeout)
            except threading.BrokenBarrierError:
                why = verdicts.pop(me, None)
                emit("D refused" if why else "D gave-up")
                flush()
                if why:
                    raise DeadlockError(why) from None
                raise
            finally:
                in_barrier.pop(me, None)
            emit("D ok")
            return n

    # -- queues ----------------------------------------------------------------------------
    def patch_queue(queue):
        OQueue = queue.Queue

        class Reported:
            """What each reported queue adds to queue.Queue: its put, get, task_done, join told."""

            def __init__(self, maxsize=0, _depth=1):
                self._tl_pid = new_id(type(self).__name__, _depth + 1)
                OQueue.__init__(self, maxsize)

            def put(self, item, block=True, timeout=None):
                pid = self._tl_pid
                if pid is None:
                    return OQueue.put(self, item, block, timeout)
                if pid in unnamed:
                    named(self, pid, 1)
                try:
                    OQueue.put(self, item, False)
                except queue.Full:
                    if not block:
                        raise
                    site = where(2)

                    def attempt(t):
                        try:
                            OQueue.put(self, item, True, t)
                            return True
                        except queue.Full:
                            return False

                    if not wait(pid, "S", "get", timeout, attempt, site):
                        raise
                buf.append(f"{mono()} {ident()} S {pid} put\n")
                if len(buf) >= 256:
                    flush()

            def get(self, block=True, timeout=None):
                pid = self._tl_pid
                if pid is None:
                    return OQueue.get(self, block, timeout)
                if pid in unnamed:
                    named(self, pid, 1)
                try:
                    item = OQueue.get(self, False)
                except queue.Empty:
                    if not block:
                        raise
                    site = where(2)
                    box = []

                    def attempt(t):
                        try:
                            box.append(OQueue.get(self, True, t))
                            return True
                        except queue.Empty:
                            return False

                    if not wait(pid, "S", "put", timeout, attempt, site):
                        raise
                    item = box[0]
                buf.append(f"{mono()} {ident()} S {pid} get\n")
                if len(buf) >= 256:
                    flush()
                return item

            def task_done(self):
                if self._tl_pid is not None:
                    emit("S %d task_done" % self._tl_pid)
                OQueue.task_done(self)

            def join(self):
                pid = self._tl_pid
                if pid is None or not self.unfinished_tasks:
                    return OQueue.join(self)
                named(self, pid, 1)

                def attempt(t):
                    with self.all_tasks_done:
                        if self.unfinished_tasks:
                            self.all_tasks_done.wait(t)
                        return not self.unfinished_tasks

                wait(pid, "S", "task_done", None, attempt, where(2))

        # Each reported queue is still an instance of the reported queue.Queue.
        RQueue = type("Queue", (Reported, OQueue), {"__module__": "queue"})
        RLifo = type("LifoQueue", (queue.LifoQueue, RQueue), {"__module__": "queue"})
        RPrio = type("PriorityQueue", (queue.PriorityQueue, RQueue), {"__module__": "queue"})
        queue.Queue, queue.LifoQueue, queue.PriorityQueue = RQueue, RLifo, RPrio

    # -- futures ---------------------------------------------------------------------------
    def wrap_futures(_base):
        F = _base.Future
        orig_result, orig_set, orig_exc = F.result, F.set_result, F.set_exception

        def pid_of(fut):
            pid = fut.__dict__.get("_tl_pid")
            if pid is None:
                state["next"] += 1
                pid = fut._tl_pid = state["next"]
                emit("N %d Future - future-%d" % (pid, pid))
            return pid

        def result(self, timeout=None):
            if self.done():
                return orig_result(self, 0)
            pid = pid_of(self)
            site = where(2)

            def attempt(t):
                with self._condition:
                    if not self.done():
                        self._condition.wait(t)
                return self.done()

            if not wait(pid, "S", "done", timeout, attempt, site):
                raise TimeoutError()
            return orig_result(self, 0)

        def set_result(self, value):
            emit("S %d done" % pid_of(self))
            return orig_set(self, value)

        def set_exception(self, exc):
            emit("S %d done" % pid_of(self))
            return orig_exc(self, exc)

        F.result, F.set_result, F.set_exception = result, set_result, set_exception

        # as_completed() and wait() block on their waiter's Event, which the library makes
        # for itself: that one is made a reported Event, named for the call.
        waiter_init = _base._Waiter.__init__

        def init_waiter(self):
            waiter_init(self)
            ev = Event()
            state["next"] += 1
            pid = ev._tl_pid = state["next"]
            call = "as_completed" if isinstance(self, _base._AsCompletedWaiter) else "wait"
            emit("N %d Event - futures.%s" % (pid, call))
            self.event = ev

        _base._Waiter.__init__ = init_waiter

    # -- the program's end, child processes --------------------------------------------------
    orig_shutdown = threading._shutdown

    main_cpu0 = time.thread_time_ns()

    def _shutdown():
        if threading.Lock is not lock_factory:
            emit("P threading.Lock was replaced by the program: its locks are not observed")
        emit("E %d" % (time.thread_time_ns() - main_cpu0))
        flush()
        orig_shutdown()

    # A traceback shows the program's frames, never the shim's (the wrapped acquire, get…).
    def program_frames(tb):
        kept = []
        while tb is not None:
            if tb.tb_frame.f_code.co_filename != shim_file:
                kept.append(tb)
            tb = tb.tb_next
        rebuilt = None
        for t in reversed(kept):
            rebuilt = types.TracebackType(rebuilt, t.tb_frame, t.tb_lasti, t.tb_lineno)
        return rebuilt

    orig_excepthook = sys.excepthook
    orig_thread_hook = threading.excepthook

    def shown(value, tb):
        tb = program_frames(tb)
        if value is not None:
            # The printer reads the exception's own traceback.
            value = value.with_traceback(tb)
        return value, tb

    def excepthook(kind, value, tb):
        value, tb = shown(value, tb)
        orig_excepthook(kind, value, tb)

    def thread_hook(args):
        value, tb = shown(args.exc_value, args.exc_traceback)
        orig_thread_hook(type(args)((args.exc_type, value, tb, args.thread)))

    sys.excepthook = excepthook
    threading.excepthook = thread_hook

    def forked_child():
        state["dead"] = True
        del buf[:]

    os.register_at_fork(
        before=lambda: emit("P a child process (fork) runs unobserved"),
        after_in_child=forked_child,
    )

    # Not an audit hook: sys._getframe is audited, and a hook would cost every operation.
    def patch_subprocess(subprocess):
        popen = subprocess.Popen.__init__

        def init(self, *a, **k):
            emit("P a child process (subprocess) runs unobserved")
            return popen(self, *a, **k)

        subprocess.Popen.__init__ = init

    # queue, concurrent.futures and subprocess are wrapped when the program imports them (not before:
    # a program without them starts as fast as under plain python3).
    patches = {
        "queue": patch_queue,
        "concurrent.futures._base": wrap_futures,
        "subprocess": patch_subprocess,
    }

    class Later:
        """A finder that lets the others load a module, then patches it."""

        def find_spec(self, name, path=None, target=None):
            patch = patches.get(name)
            if patch is None:
                return None
            for finder in sys.meta_path:
                find = getattr(finder, "find_spec", None)
                if finder is self or find is None:
                    continue
                spec = find(name, path, target)
                if spec is not None:
                    break
            else:
                return None
            loader = spec.loader
            if loader is None or isinstance(loader, type):
                return None
            plain = loader.exec_module

            def exec_module(module):
                plain(module)
                patch(module)

            loader.exec_module = exec_module
            return spec

    threading.Lock = lock_factory
    threading.RLock = rlock_factory
    threading.Condition = Condition
    threading.Semaphore = Semaphore
    threading.BoundedSemaphore = BoundedSemaphore
    threading.Event = Event
    threading.Barrier = Barrier
    threading._shutdown = _shutdown
    for name, patch in patches.items():
        if name in sys.modules:
            patch(sys.modules[name])
    sys.meta_path.insert(0, Later())

    gil = getattr(sys, "_is_gil_enabled", lambda: True)()
    emit("I %d %s %s" % (1 if gil else 0, sys.getswitchinterval(), sys.version.split()[0]))
    emit("T 0 %s" % threading.current_thread().name)
    flush()
    _thread.start_new_thread(reader, ())
    if isinstance(sys.stdout, Synced):
        # The first lines told before the program's first (input() prompts bypass stdout).
        emit("Y")
        judged(ident())


_install()
