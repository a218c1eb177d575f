//! Delivery chaos, for testing webhook consumers: drop events, send some twice, shuffle a
//! batch. Moneyhub sends each webhook once and makes no ordering promise, so a robust
//! consumer must cope with a missing event (by re-syncing), a replay (by deduplicating on
//! `id`/`jti`) and events out of order. Off by default; decisions come from a seeded stream
//! so a failing consumer test replays the same way.

use serde::{Deserialize, Serialize};

use crate::rng::{label, Rng};

/// The chaos settings (`PUT /__sandbox/webhooks/chaos`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct ChaosSettings {
    /// Probability that an event is dropped (logged `dropped`, never sent).
    pub drop: f64,
    /// Probability that a sent event is sent a second time.
    pub duplicate: f64,
    /// Probability that a drained batch is shuffled (`true` = 1.0).
    pub reorder: f64,
}

/// `reorder` may be given as a boolean or a probability.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
enum BoolOrProb {
    Bool(bool),
    Prob(f64),
}

/// The request body: every field optional (missing = 0 / off).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosRequest {
    #[serde(default)]
    drop: Option<f64>,
    #[serde(default)]
    duplicate: Option<f64>,
    #[serde(default)]
    reorder: Option<BoolOrProb>,
}

impl ChaosRequest {
    /// Validates the probabilities (each within `0..=1`).
    pub fn into_settings(self) -> Result<ChaosSettings, String> {
        let check = |name: &str, v: f64| {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(format!("{name} must be a probability between 0 and 1, got {v}"))
            }
        };
        let reorder = match self.reorder {
            None | Some(BoolOrProb::Bool(false)) => 0.0,
            Some(BoolOrProb::Bool(true)) => 1.0,
            Some(BoolOrProb::Prob(p)) => check("reorder", p)?,
        };
        Ok(ChaosSettings {
            drop: check("drop", self.drop.unwrap_or(0.0))?,
            duplicate: check("duplicate", self.duplicate.unwrap_or(0.0))?,
            reorder,
        })
    }
}

/// Settings plus the seeded stream their decisions come from.
#[derive(Debug)]
pub struct Chaos {
    /// The current settings.
    pub settings: ChaosSettings,
    rng: Rng,
}

impl Chaos {
    /// Chaos off, with a stream derived from the sandbox seed.
    pub fn new(seed: u64) -> Self {
        Chaos { settings: ChaosSettings::default(), rng: Rng::derive(seed, &[label("webhook chaos")]) }
    }

    /// Whether to drop the next event. Draws nothing while the setting is off, so switching
    /// one kind of chaos on does not shift another's decisions.
    pub fn drop_next(&mut self) -> bool {
        self.settings.drop > 0.0 && self.rng.chance(self.settings.drop)
    }

    /// Whether to send the event just sent once more.
    pub fn duplicate_next(&mut self) -> bool {
        self.settings.duplicate > 0.0 && self.rng.chance(self.settings.duplicate)
    }

    /// Shuffles `batch` (Fisher–Yates) with probability `reorder`.
    pub fn maybe_shuffle<T>(&mut self, batch: &mut [T]) {
        if batch.len() < 2 || self.settings.reorder <= 0.0 || !self.rng.chance(self.settings.reorder) {
            return;
        }
        for i in (1..batch.len()).rev() {
            let j = self.rng.range(0, i as i64 + 1) as usize;
            batch.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let r: ChaosRequest = serde_json::from_str(r#"{"drop":0.5,"reorder":true}"#).unwrap();
        assert_eq!(r.into_settings().unwrap(), ChaosSettings { drop: 0.5, duplicate: 0.0, reorder: 1.0 });
        let r: ChaosRequest = serde_json::from_str(r#"{"duplicate":1.5}"#).unwrap();
        assert!(r.into_settings().is_err());
        let r: ChaosRequest = serde_json::from_str(r#"{"reorder":-0.1}"#).unwrap();
        assert!(r.into_settings().is_err());
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut a = Chaos::new(1);
        a.settings.reorder = 1.0;
        let mut b = Chaos::new(1);
        b.settings.reorder = 1.0;
        let mut x: Vec<u32> = (0..20).collect();
        let mut y = x.clone();
        a.maybe_shuffle(&mut x);
        b.maybe_shuffle(&mut y);
        assert_eq!(x, y);
        assert_ne!(x, (0..20).collect::<Vec<_>>());
        let mut sorted = x.clone();
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }
}
