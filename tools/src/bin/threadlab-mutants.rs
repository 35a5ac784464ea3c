//! `make mutants`: break each primitive on purpose, in a scratch copy of the source, and see
//! which demo check (the ✘ a class would see) and which test catches the break.
//!
//! For every mutant in [`MUTANTS`]: the scratch copy gets one deliberate edit, threadlab is
//! rebuilt there, the demos that teach that primitive run over a few seeds, and the unit
//! tests of the primitive run. A mutant counts as caught by a demo only when a check in a
//! demo's report turns to ✘; an error or a crash is reported, but it is not what a class
//! would read. Before any mutant, the unmutated copy must pass every listed run.
//!
//! `threadlab-mutants [NAME…]` runs the named mutants only; `--check` only checks that
//! every break finds its text exactly once. Not a test: it takes minutes.
#![allow(clippy::disallowed_methods)] // std::thread::sleep is denied in src/demos only

use std::path::{Path, PathBuf};
use std::process::Command;

/// One deliberate break.
struct Mutant {
    name: &'static str,
    file: &'static str,
    find: &'static str,
    replace: &'static str,
    /// Demo runs that should catch it (each gets `--pace 0.02 --json -q --seed S`).
    runs: &'static [&'static [&'static str]],
    /// `cargo test --lib` filter for the primitive's own tests.
    tests: &'static str,
}

const MUTANTS: &[Mutant] = &[
    Mutant {
        name: "url-check: a host's gate lets one more in",
        file: "src/check/hosts.rs",
        find: ".map(|n| Semaphore::new(n).with_probe",
        replace: ".map(|n| Semaphore::new(n + 1).with_probe",
        runs: &[&["url-check", "--demo", "--host-concurrency", "2"]],
        tests: "check::hosts",
    },
    Mutant {
        name: "semaphore: one extra permit",
        file: "src/sync/semaphore.rs",
        find: "                count: permits,",
        replace: "                count: permits + 1,",
        runs: &[&["semaphore"]],
        tests: "sync::semaphore",
    },
    Mutant {
        name: "bounded semaphore: bound off by one",
        file: "src/sync/semaphore.rs",
        find: "&& st.count >= bound",
        replace: "&& st.count > bound",
        runs: &[&["semaphore", "--bounded"]],
        tests: "sync::semaphore",
    },
    Mutant {
        name: "mutex: the write outside the lock",
        file: "src/demos/race_condition.rs",
        find: "        counter.locked(|count| {\n            let value = *count; // read\n            window.pause();\n            *count = value + 1; // write\n        })",
        replace: "        let value = counter.locked(|count| *count); // read\n        window.pause();\n        counter.locked(|count| *count = value + 1) // write",
        runs: &[&[
            "race",
            "--strategy",
            "mutex",
            "--iterations",
            "20000",
            "--budget",
            "5",
        ]],
        tests: "race_condition",
    },
    Mutant {
        name: "RLock: any release by the owner frees it",
        file: "src/sync/rlock.rs",
        find: "        announce(st.count);\n        if st.count == 0 {",
        replace: "        announce(st.count);\n        if true {",
        runs: &[&["rlock"], &["rlock", "--explore", "--preemptions", "1"]],
        tests: "sync::rlock",
    },
    Mutant {
        name: "Lock: the guard does not release on drop",
        file: "src/sync/rlock.rs",
        find: "        // The guard's thread is the owner, so this release cannot be refused.\n        let _ = self.lock.release();",
        replace: "        // The guard's thread is the owner, so this release cannot be refused.\n        let _ = &self.lock;",
        runs: &[&["lock"]],
        tests: "sync::rlock",
    },
    Mutant {
        name: "queue: drops an item when full",
        file: "src/sync/queue.rs",
        find: "        match st.items.pop_front() {",
        replace: "        if st.items.len() > 1 && st.items.len() == st.high_water {\n            st.items.pop_front();\n            st.unfinished -= 1;\n        }\n        match st.items.pop_front() {",
        runs: &[&["producer-consumer"]],
        tests: "sync::queue",
    },
    Mutant {
        name: "queue: capacity off by one",
        file: "src/sync/queue.rs",
        find: "        if st.items.len() >= self.maxsize && !st.closed {\n            on_full",
        replace: "        if st.items.len() > self.maxsize && !st.closed {\n            on_full",
        runs: &[&["producer-consumer"]],
        tests: "sync::queue",
    },
    Mutant {
        name: "condition: `while` → `if` around the wait",
        file: "src/demos/condition.rs",
        find: "                while st.items.is_empty() && !st.closed {\n                    st = self.wait_for_item(st, tally)?;",
        replace: "                if st.items.is_empty() && !st.closed {\n                    st = self.wait_for_item(st, tally)?;",
        runs: &[&["condition"], &["@CONDITION", "--explore"]],
        tests: "demos::condition",
    },
    Mutant {
        name: "scheduler: a replay token's schedule ignored",
        file: "src/schedule/mod.rs",
        find: "        Plan {\n            overrides: self.overrides.clone(),\n            ..Plan::from(self.base.strategy())\n        }",
        replace: "        Plan::from(Base::Default.strategy())",
        runs: &[&[
            "race",
            "--iterations",
            "3",
            "--strategy",
            "unsynchronized",
            "--search",
            "100",
        ]],
        tests: "schedule",
    },
    Mutant {
        name: "Event: a wait ignores set",
        file: "src/sync/event.rs",
        find: ".wait(&self.flag, flag, &self.changed, wait, |set| !*set);",
        replace: ".wait(&self.flag, flag, &self.changed, wait, |_| true);",
        runs: &[&["daemon", "--mode", "graceful"], &["event", "--tick", "5"]],
        tests: "sync::event",
    },
    Mutant {
        name: "Event: set wakes one waiter, not all",
        file: "src/sync/event.rs",
        find: "        self.probe.signal(\"set\");\n        self.changed.notify_all();",
        replace: "        self.probe.signal(\"set\");\n        self.changed.notify_one();",
        runs: &[&["event", "--waiters", "4"]],
        tests: "sync::event",
    },
    Mutant {
        name: "Timer: cancel() says in time but does not stop it",
        file: "src/sync/timer.rs",
        find: "                *st = State::Cancelled;\n",
        replace: "",
        runs: &[&["timer", "--interval", "5", "--work", "1.5", "--ticks", "3"]],
        tests: "sync::timer",
    },
    Mutant {
        name: "Timer: fixed rate re-armed after the work",
        file: "src/sync/timer.rs",
        find: "                    Schedule::FixedRate => {\n                        next += interval;",
        replace: "                    Schedule::FixedRate => {\n                        next = Instant::now() + interval;",
        runs: &[&["timer", "--interval", "5", "--work", "1.5", "--ticks", "3"]],
        tests: "sync::timer",
    },
    Mutant {
        name: "Barrier: opens one arrival early",
        file: "src/sync/barrier.rs",
        find: "        if st.arrived == self.parties {",
        replace: "        if st.arrived + 1 >= self.parties {",
        runs: &[&["barrier"]],
        tests: "sync::barrier",
    },
    Mutant {
        name: "Barrier: a timeout does not break it for the others",
        file: "src/sync/barrier.rs",
        find: "            // Python: the thread whose wait times out breaks the barrier for everyone.\n            self.break_locked(&mut st);",
        replace: "            // Python: the thread whose wait times out breaks the barrier for everyone.\n            st.arrived -= 1;",
        // A 30 s timeout (600 ms at the runs' pace): Late's own timeout would end its wait
        // 300 ms after Early's, well past the 100 ms the check allows.
        runs: &[&["barrier", "--timeout", "30"]],
        tests: "sync::barrier",
    },
    Mutant {
        name: "Barrier: the action runs after the release, outside the lock",
        file: "src/sync/barrier.rs",
        find: "            if let Some(action) = &self.action {\n                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(action));",
        replace: "            if let Some(action) = &self.action {\n                st.round += 1;\n                self.changed.notify_all();\n                drop(st);\n                action();\n                st = lock(&self.state);\n                st.round -= 1;\n                let ran: std::thread::Result<()> = Ok(());",
        runs: &[&["barrier"]],
        tests: "sync::barrier",
    },
    Mutant {
        name: "Barrier: reset() does not release the threads waiting at that moment",
        file: "src/sync/barrier.rs",
        find: "        st.resets += 1;\n",
        replace: "",
        runs: &[&["barrier"]],
        tests: "sync::barrier",
    },
    Mutant {
        name: "RLock: a thread that is not the owner may release it",
        file: "src/sync/rlock.rs",
        find: "            Some((id, _)) if *id == me => {}",
        replace: "            Some(_) => {}",
        runs: &[&["rlock"]],
        tests: "sync::rlock",
    },
    Mutant {
        name: "queue: join() returns when the queue is empty, not when every task is done",
        file: "src/sync/queue.rs",
        find: "            |s| s.unfinished > 0,\n        );\n        st.unfinished == 0",
        replace: "            |s| !s.items.is_empty(),\n        );\n        st.items.is_empty()",
        // Tasks of 100 ms (at the runs' pace): the queue empties well before the last
        // task is done, as a join that waits for the wrong thing needs to be seen.
        runs: &[&["producer-consumer", "--work-time", "5"]],
        tests: "sync::queue",
    },
    Mutant {
        name: "queue: put() does not notify a waiting get() (a lost wake-up)",
        file: "src/sync/queue.rs",
        find: "        self.probe.signal(\"put\");\n        self.not_empty.notify_one();",
        replace: "        self.probe.signal(\"put\");",
        runs: &[&["producer-consumer"]],
        tests: "sync::queue",
    },
    Mutant {
        name: "queue: close() wakes one waiter, not all",
        file: "src/sync/queue.rs",
        find: "        self.probe.signal(\"close\");\n        self.not_empty.notify_all();",
        replace: "        self.probe.signal(\"close\");\n        self.not_empty.notify_one();",
        runs: &[&["producer-consumer", "--shutdown", "close"]],
        tests: "sync::queue",
    },
    Mutant {
        name: "queue: task_done() does not wake join()",
        file: "src/sync/queue.rs",
        find: "            self.probe.signal(\"task_done\");\n            self.all_done.notify_all();",
        replace: "            self.probe.signal(\"task_done\");",
        runs: &[&["producer-consumer"]],
        tests: "sync::queue",
    },
    Mutant {
        name: "Timer: cancel() does not wake the timer's thread",
        file: "src/sync/timer.rs",
        find: "        self.probe.signal(\"cancel\");\n        self.changed.notify_all();",
        replace: "        self.probe.signal(\"cancel\");",
        runs: &[&["timer"]],
        tests: "sync::timer",
    },
    Mutant {
        name: "Event: set() notifies before it sets the flag",
        file: "src/sync/event.rs",
        find: "        *lock(&self.flag) = true;\n        self.probe.signal(\"set\");\n        self.changed.notify_all();",
        replace: "        self.changed.notify_all();\n        *lock(&self.flag) = true;\n        self.probe.signal(\"set\");",
        runs: &[&["event"], &["daemon", "--mode", "graceful"]],
        tests: "sync::event",
    },
    Mutant {
        name: "condition: put() notifies nobody (the consumers find items by polling)",
        file: "src/demos/condition.rs",
        find: "        // Every waiting consumer wakes; all but one will find the item gone.\n        self.not_empty.notify_all();",
        replace: "",
        runs: &[&["condition"]],
        tests: "demos::condition",
    },
    Mutant {
        name: "thread-local: a new connection for every task",
        file: "src/demos/thread_local.rs",
        find: "if slot.is_none() {",
        replace: "if slot.is_some() || slot.is_none() {",
        runs: &[&["thread-local"]],
        tests: "demos::thread_local",
    },
    Mutant {
        name: "deadlock detector: never finds a cycle",
        file: "src/lab/waitgraph.rs",
        find: "if let Some(path) = find_cycle(&g, me, resource)",
        replace: "if let Some(path) = find_cycle(&g, me, resource).filter(|_| false)",
        runs: &[
            &["deadlock", "--fix", "none"],
            &["philosophers", "--fix", "none"],
        ],
        tests: "lab::waitgraph",
    },
    Mutant {
        name: "deadlock detector: a wait for a signal is never hopeless",
        file: "src/lab/waitgraph.rs",
        find: "Some(w) if w.signal => others.iter().all(|o| o == t || snapshot.contains(o)),",
        replace: "Some(w) if w.signal => false,",
        runs: &[&["deadlock", "--fix", "none"]],
        tests: "lab::waitgraph",
    },
    Mutant {
        name: "deadlock detector: a thread that can still signal counted stuck",
        file: "src/lab/waitgraph.rs",
        find: "Some(w) if w.signal => others.iter().all(|o| o == t || snapshot.contains(o)),",
        replace: "Some(w) if w.signal => true,",
        runs: &[&["deadlock", "--fix", "none"]],
        tests: "lab::waitgraph",
    },
    Mutant {
        name: "deadlock: the ordering fix forgotten",
        file: "src/demos/deadlock.rs",
        find: "How::Ordered => (from.min(to), from.max(to)),",
        replace: "How::Ordered => (from, to),",
        runs: &[&["deadlock", "--fix", "ordering"]],
        tests: "demos::deadlock",
    },
    Mutant {
        name: "philosophers: the waiter seats everyone",
        file: "src/demos/philosophers.rs",
        find: "Semaphore::new(n - 1)",
        replace: "Semaphore::new(n)",
        runs: &[&["philosophers", "--fix", "waiter"]],
        tests: "demos::philosophers",
    },
    Mutant {
        name: "philosophers: the ordering fix forgotten",
        file: "src/demos/philosophers.rs",
        find: "        // the fix: the last one breaks the circle.\n        (right, left)",
        replace: "        (left, right)",
        runs: &[&["philosophers", "--fix", "ordering"]],
        tests: "demos::philosophers",
    },
    Mutant {
        name: "exceptions: a worker does not catch its own panics",
        file: "src/demos/exceptions.rs",
        find: "std::panic::catch_unwind(|| process(text))",
        replace: "Ok::<_, Box<dyn std::any::Any + Send>>(process(text))",
        runs: &[&["exceptions", "--items", "40"]],
        tests: "demos::exceptions",
    },
    Mutant {
        name: "cpu-vs-io: every share of the work runs on one thread",
        file: "src/demos/cpu_vs_io.rs",
        find: "let share = tasks / threads + usize::from(i < tasks % threads);",
        replace: "let share = if i == 0 { tasks } else { 0 };",
        runs: &[&["cpu-vs-io", "--cpu", "20", "--io", "5"]],
        tests: "demos::cpu_vs_io",
    },
    Mutant {
        name: "RateLimiter: the next slot counted from now, not from the slot reserved",
        file: "src/sync/rate.rs",
        find: "                *next = Some(at + self.interval);",
        replace: "                *next = Some(now + self.interval);",
        runs: &[&["rate-limit", "--calls", "12"]],
        tests: "sync::rate",
    },
    Mutant {
        name: "worker-pool: the fixed workers loop on a timeout instead of the closed queue",
        file: "src/demos/worker_pool.rs",
        find: "lab::recv(\"tasks\", task_rx)",
        replace: "lab::blocking(\"tasks\", || loop {\n                            match task_rx.recv_timeout(Duration::from_millis(200)) {\n                                Ok(t) => break Some(t),\n                                Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,\n                                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {\n                                    std::thread::sleep(Duration::from_millis(200));\n                                    break None;\n                                }\n                            }\n                        })",
        runs: &[&["worker-pool"]],
        tests: "demos::worker_pool",
    },
    Mutant {
        name: "shared-data: the sharded map's merge misses a shard",
        file: "src/demos/shared_data.rs",
        find: "    for shard in &maps {",
        replace: "    for shard in maps.iter().skip(1) {",
        runs: &[&["shared-data", "--size", "1000", "--updates", "2000"]],
        tests: "demos::shared_data",
    },
    Mutant {
        name: "lab: spawned threads are not named",
        file: "src/lab/mod.rs",
        find: "            .name(name.clone())\n            .spawn_scoped(scope",
        replace: "            .spawn_scoped(scope",
        runs: &[&["threads"]],
        tests: "demos::threads",
    },
    Mutant {
        name: "pool: one worker, whatever the size asked",
        file: "src/pool/mod.rs",
        find: "        for i in 0..workers.max(1) {",
        replace: "        for i in 0..1 {",
        runs: &[&["pool", "--scenario", "downloads"]],
        tests: "pool",
    },
    Mutant {
        name: "pool: as_completed yields in input order",
        file: "src/pool/mod.rs",
        find: "        let op = select.select();\n        let k = op.index();\n        let result = op.recv(&pending[k].1.rx).unwrap_or(Err(TaskError::Lost));\n        let (index, _) = pending.swap_remove(k);",
        replace: "        drop(select);\n        let result = pending[0].1.rx.recv().unwrap_or(Err(TaskError::Lost));\n        let (index, _) = pending.remove(0);",
        runs: &[&["pool", "--scenario", "order"]],
        tests: "pool",
    },
    Mutant {
        name: "pool: no catch_unwind around a task",
        file: "src/pool/mod.rs",
        find: "let caught = crate::lab::expecting_panics(|| catch_unwind(AssertUnwindSafe(task)));",
        replace: "let caught: std::thread::Result<_> = Ok(task());",
        runs: &[&["pool", "--scenario", "failure"]],
        tests: "pool",
    },
    Mutant {
        name: "url-check: drops a line repeating the one before",
        file: "src/check/input.rs",
        find: "        if self.entries.len() >= MAX_ENTRIES {",
        replace: "        if self.entries.last().is_some_and(|e| self.text(e) == text) {\n            return Ok(true);\n        }\n        if self.entries.len() >= MAX_ENTRIES {",
        runs: &[&["url-check", "@DUPLICATES"]],
        tests: "check::input",
    },
];

const SEEDS: [&str; 3] = ["1", "2", "3"];

/// What one run of the listed demos found.
#[derive(Default)]
struct Findings {
    /// Names of checks that turned ✘ (with the run that showed them).
    failed_checks: Vec<String>,
    /// Runs that ended in an error or a crash instead of a report.
    errors: Vec<String>,
}

fn sh(cmd: &mut Command) -> std::io::Result<std::process::Output> {
    cmd.output()
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Runs the demos of `runs` with the scratch build; collects ✘ checks and errors.
fn run_demos(exe: &Path, runs: &[&[&str]], duplicates: &Path) -> Findings {
    let mut found = Findings::default();
    for run in runs {
        for seed in SEEDS {
            let mut args: Vec<String> = run
                .iter()
                .flat_map(|a| match *a {
                    "@DUPLICATES" => vec![duplicates.display().to_string()],
                    // The small condition configuration the README explores.
                    "@CONDITION" => threadlab::schedule::examples::CONDITION
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    a => vec![a.to_string()],
                })
                .collect();
            args.extend(
                [
                    "--pace",
                    "0.02",
                    "--json",
                    "-q",
                    "--seed",
                    seed,
                    "--watchdog",
                    "60",
                ]
                .map(String::from),
            );
            let label = format!("{} (seed {seed})", run.join(" "));
            let out = match sh(Command::new(exe).args(&args)) {
                Ok(out) => out,
                Err(e) => {
                    found.errors.push(format!("{label}: {e}"));
                    continue;
                }
            };
            match serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                Ok(doc) if doc.get("census").is_some() => census_failures(&doc, &mut found),
                Ok(report) => {
                    for c in report["checks"].as_array().into_iter().flatten() {
                        if c["ok"] == false {
                            // Matched and shown by id: the sentence may be reworded.
                            let id = c["id"].as_str().unwrap_or("?").to_string();
                            if !found.failed_checks.contains(&id) {
                                found.failed_checks.push(id);
                            }
                        }
                    }
                }
                Err(_) => {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let line = stderr.lines().last().unwrap_or("no output").to_string();
                    found
                        .errors
                        .push(format!("{label}: exit {:?}: {line}", out.status.code()));
                }
            }
        }
    }
    found
}

/// An exploration's census (`--explore --json`): each check some schedules turn ✘, with how
/// many of all of them (every schedule was run: a break found this way is found for sure).
fn census_failures(doc: &serde_json::Value, found: &mut Findings) {
    let census = &doc["census"];
    let total = census["schedules"].as_u64().unwrap_or(0);
    for o in census["outcomes"].as_array().into_iter().flatten() {
        for id in o["failed_checks"].as_array().into_iter().flatten() {
            let id = format!(
                "{} (--explore: {} of {total} schedules)",
                id.as_str().unwrap_or("?"),
                o["schedules"]
            );
            if !found.failed_checks.contains(&id) {
                found.failed_checks.push(id);
            }
        }
    }
}

fn build(scratch: &Path, target: &Path) -> anyhow::Result<PathBuf> {
    let out = sh(Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--bin", "threadlab"])
        .current_dir(scratch)
        .env("CARGO_TARGET_DIR", target))?;
    anyhow::ensure!(
        out.status.success(),
        "build failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(target.join("debug").join("threadlab"))
}

/// Runs the primitive's unit tests; returns the failing test names (empty: none failed).
fn run_tests(scratch: &Path, target: &Path, filter: &str) -> Vec<String> {
    // Bounded: a mutant can make a unit test wait forever; `timeout` ends it (a failure).
    let out = sh(Command::new("timeout")
        .args(["300", env!("CARGO"), "test", "--lib", filter])
        .current_dir(scratch)
        .env("CARGO_TARGET_DIR", target));
    match out {
        Ok(out) if out.status.code() == Some(124) => {
            vec![format!("{filter}: a test hung (stopped after 300 s)")]
        }
        Ok(out) => {
            let failed: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("test ") && l.ends_with("FAILED"))
                .map(|l| {
                    l.trim_start_matches("test ")
                        .trim_end_matches(" ... FAILED")
                        .to_string()
                })
                .collect();
            if !failed.is_empty() || out.status.success() {
                return failed;
            }
            // A unit test's own bound (`sync::bounded_test`) ended the test binary: it names
            // the test that was still waiting.
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr
                .lines()
                .find(|l| l.contains("still waiting"))
                .unwrap_or("the test binary failed");
            vec![line.to_string()]
        }
        Err(e) => vec![format!("could not run: {e}")],
    }
}

/// Breaks whose text is not in their file exactly once (the code moved under them).
fn misplaced(repo: &Path) -> Vec<String> {
    MUTANTS
        .iter()
        .filter(|m| {
            std::fs::read_to_string(repo.join(m.file))
                .map_or(true, |src| src.matches(m.find).count() != 1)
        })
        .map(|m| format!("{} ({})", m.name, m.file))
        .collect()
}

/// Where the runs happen: a scratch copy of the source, its target folder, and a URL list
/// with a line repeated (against a port nothing listens on: refused, fast, no network).
struct Scratch {
    copy: PathBuf,
    target: PathBuf,
    duplicates: PathBuf,
}

fn prepare(repo: &Path) -> anyhow::Result<Scratch> {
    let base = std::env::temp_dir().join("threadlab-mutants");
    let copy = base.join("src-copy");
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(&copy)?;
    for f in ["Cargo.toml", "Cargo.lock", "clippy.toml"] {
        if repo.join(f).exists() {
            std::fs::copy(repo.join(f), copy.join(f))?;
        }
    }
    copy_tree(&repo.join("src"), &copy.join("src"))?;
    // The workspace's other member (the tests' servers depend on the library under test).
    copy_tree(&repo.join("tools"), &copy.join("tools"))?;
    // The Python snippets compiled into the binary (`--python`).
    copy_tree(&repo.join("demos"), &copy.join("demos"))?;
    let duplicates = base.join("duplicates.txt");
    std::fs::write(
        &duplicates,
        "http://127.0.0.1:9/a\nhttp://127.0.0.1:9/a\nhttp://127.0.0.1:9/b\n",
    )?;
    Ok(Scratch {
        copy,
        target: base.join("target"),
        duplicates,
    })
}

/// One break: applied in the scratch copy, built, its demos and unit tests run, undone.
/// Returns what a demo check and a unit test said, and whether a demo check caught it.
fn try_mutant(m: &Mutant, repo: &Path, sc: &Scratch) -> anyhow::Result<(String, String, bool)> {
    let path = sc.copy.join(m.file);
    let original = std::fs::read_to_string(repo.join(m.file))?;
    anyhow::ensure!(
        original.matches(m.find).count() == 1,
        "{}: the text to change is not in {} exactly once",
        m.name,
        m.file
    );
    std::fs::write(&path, original.replacen(m.find, m.replace, 1))?;
    let result = build(&sc.copy, &sc.target).map(|exe| {
        let demos = run_demos(&exe, m.runs, &sc.duplicates);
        let tests = run_tests(&sc.copy, &sc.target, m.tests);
        (demos, tests)
    });
    std::fs::write(&path, &original)?;
    // A break that does not build is the runner's own mistake: said, and the run goes on.
    let (demos, tests) = match result {
        Ok(found) => found,
        Err(e) => {
            let first = e.to_string().lines().nth(1).unwrap_or("").to_string();
            let mut f = Findings::default();
            f.errors.push(format!("the break does not build: {first}"));
            (f, Vec::new())
        }
    };
    let caught = !demos.failed_checks.is_empty();
    let by_demo = if caught {
        format!("✘ {}", demos.failed_checks.join("; "))
    } else {
        format!(
            "NOT CAUGHT{}",
            demos
                .errors
                .first()
                .map(|e| format!(" (only an error: {e})"))
                .unwrap_or_default()
        )
    };
    let by_test = if tests.is_empty() {
        "—".to_string()
    } else {
        tests.join(", ")
    };
    Ok((by_demo, by_test, caught))
}

fn main() -> anyhow::Result<()> {
    let mut only: Vec<String> = std::env::args().skip(1).collect();
    // The repository: this crate is its `tools/` member.
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    // Every break must find its text exactly once, checked before minutes of building
    // (`--check`: only this).
    let check_only = only.iter().any(|a| a == "--check");
    only.retain(|a| a != "--check");
    let misplaced = misplaced(&repo);
    anyhow::ensure!(
        misplaced.is_empty(),
        "the text to change is not in its file exactly once: {misplaced:?}"
    );
    if check_only {
        println!("every one of {} breaks finds its text once", MUTANTS.len());
        return Ok(());
    }
    let sc = prepare(&repo)?;
    println!(
        "threadlab mutants: each break in a scratch copy ({})",
        sc.copy.display()
    );
    let exe = build(&sc.copy, &sc.target)?;
    let mut baseline_bad = Vec::new();
    for m in MUTANTS {
        let f = run_demos(&exe, m.runs, &sc.duplicates);
        // url-check exits 2 on failing URLs; that list fails on purpose, so only its
        // checks matter here.
        baseline_bad.extend(f.failed_checks);
        baseline_bad.extend(f.errors);
    }
    anyhow::ensure!(
        baseline_bad.is_empty(),
        "the unmutated copy fails already: {baseline_bad:?}"
    );
    println!("baseline: every listed run passes every check\n");
    let mut rows = Vec::new();
    for m in MUTANTS
        .iter()
        .filter(|m| only.is_empty() || only.iter().any(|o| m.name.contains(o.as_str())))
    {
        let (by_demo, by_test, caught) = try_mutant(m, &repo, &sc)?;
        println!(
            "{}\n  demo check: {by_demo}\n  unit test:  {by_test}",
            m.name
        );
        rows.push((m.name, by_demo, by_test, caught));
    }
    println!("\n| break | caught by a demo check | caught by a unit test |");
    println!("|---|---|---|");
    for (name, demo, test, _) in &rows {
        println!("| {name} | {demo} | {test} |");
    }
    let uncaught = rows.iter().filter(|r| !r.3).count();
    println!(
        "\n{} mutants: {} caught by a demo check, {uncaught} not",
        rows.len(),
        rows.len() - uncaught
    );
    // Leave the scratch build for the next run's incremental build; the copy is reset then.
    std::process::exit(i32::from(uncaught > 0));
}
