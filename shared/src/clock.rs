//! Time as a dependency, so tests and the local runner control it instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system's clock moved by a fixed offset: it runs in real time from another instant (a
/// rehearsal against the sandbox, whose deals are dated around the sample events' time).
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    offset: chrono::TimeDelta,
}

impl ShiftedClock {
    /// A clock that reads `start` now.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        ShiftedClock {
            offset: start - Utc::now(),
        }
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::from_std(by).unwrap_or_default();
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
