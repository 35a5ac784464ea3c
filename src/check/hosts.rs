//! Per-host politeness: at most N checks of one host at once (the project's own
//! [`Semaphore`], the semaphore lesson used for real) and at least an interval between the
//! requests to one host (the project's [`RateLimiter`], the rate-limit lesson), with what
//! each host saw counted for the `-v` table: requests, 429s, mean latency.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;

use crate::sync::{RateLimiter, Semaphore};

/// The limits, the same for every host.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// Checks of one host at once (`None`: as many as there are workers).
    pub concurrency: Option<usize>,
    /// Least time between two requests to one host.
    pub interval: Option<Duration>,
}

/// One host's gate and counts.
#[derive(Debug)]
pub struct Host {
    permits: Option<Semaphore>,
    spacing: Option<RateLimiter>,
    requests: AtomicU64,
    too_many: AtomicU64,
    latency_us: AtomicU64,
}

/// Every host seen, by `host:port`.
#[derive(Debug, Default)]
pub struct Hosts {
    limits: Limits,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

/// What one host saw.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStats {
    pub host: String,
    pub requests: u64,
    pub too_many: u64,
    pub mean_latency: Duration,
}

impl Hosts {
    pub fn new(limits: Limits) -> Self {
        Hosts {
            limits,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The gate of `url`'s host.
    pub fn of(&self, url: &Url) -> Arc<Host> {
        let key = format!(
            "{}:{}",
            url.host_str().unwrap_or_default(),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut hosts = crate::sync::lock(&self.hosts);
        Arc::clone(hosts.entry(key.clone()).or_insert_with(|| {
            Arc::new(Host {
                permits: self
                    .limits
                    .concurrency
                    .map(|n| Semaphore::new(n).with_probe(crate::lab::Probe::off(&key))),
                spacing: self.limits.interval.map(|i| RateLimiter::new(1, i)),
                requests: AtomicU64::new(0),
                too_many: AtomicU64::new(0),
                latency_us: AtomicU64::new(0),
            })
        }))
    }

    /// Every host's counts, by host name.
    pub fn stats(&self) -> Vec<HostStats> {
        let hosts = crate::sync::lock(&self.hosts);
        let mut out: Vec<HostStats> = hosts
            .iter()
            .map(|(name, h)| {
                let requests = h.requests.load(Relaxed);
                HostStats {
                    host: name.clone(),
                    requests,
                    too_many: h.too_many.load(Relaxed),
                    mean_latency: Duration::from_micros(
                        h.latency_us.load(Relaxed) / requests.max(1),
                    ),
                }
            })
            .collect();
        out.sort_by(|a, b| a.host.cmp(&b.host));
        out
    }
}

impl Host {
    /// Takes one of the host's permits for a whole check (its retries too), waiting as long
    /// as it takes unless `cancelled` turns true (then `Err`). `Ok(None)`: no limit.
    pub fn enter(&self, cancelled: fn() -> bool) -> Result<Option<Entered<'_>>, Cancelled> {
        let Some(permits) = &self.permits else {
            return Ok(None);
        };
        loop {
            if cancelled() {
                return Err(Cancelled);
            }
            if permits.acquire_timeout(super::CANCEL_POLL).is_some() {
                return Ok(Some(Entered(permits)));
            }
        }
    }

    /// Waits for the host's next turn (`--host-interval`) before a request.
    pub fn turn(&self) {
        if let Some(spacing) = &self.spacing {
            spacing.acquire();
        }
    }

    /// Counts one request: its status (429 counted) and how long it took.
    pub fn record(&self, status: Option<u16>, took: Duration) {
        self.requests.fetch_add(1, Relaxed);
        if status == Some(429) {
            self.too_many.fetch_add(1, Relaxed);
        }
        self.latency_us.fetch_add(took.as_micros() as u64, Relaxed);
    }
}

/// The run was cancelled while waiting for a host's permit.
#[derive(Debug)]
pub struct Cancelled;

/// A permit of one host, given back when dropped.
pub struct Entered<'a>(&'a Semaphore);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        let _ = self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Eight threads through one host's gate of 3: the threads count who is inside (not the
    /// semaphore), and never more than 3 are; another host is not held up by this one.
    #[test]
    fn a_host_gate_admits_its_limit_at_once_and_hosts_are_separate() {
        let hosts = Hosts::new(Limits {
            concurrency: Some(3),
            interval: None,
        });
        let a: Url = "http://a.test/x".parse().unwrap();
        let b: Url = "http://b.test/x".parse().unwrap();
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let host = hosts.of(&a);
                    let _entered = host.enter(|| false).unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    inside.fetch_sub(1, Ordering::SeqCst);
                });
            }
            // While a.test is full, b.test lets a check in at once.
            std::thread::sleep(Duration::from_millis(5));
            let started = std::time::Instant::now();
            let host = hosts.of(&b);
            let entered = host.enter(|| false).unwrap();
            assert!(entered.is_some());
            assert!(started.elapsed() < Duration::from_millis(200));
        });
        assert_eq!(
            most.load(Ordering::SeqCst),
            3,
            "most inside a.test's gate at once"
        );
    }
}
