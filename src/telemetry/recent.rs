//! A bounded memory of recent requests (request id to feature, version, experiment, variant), so
//! feedback that arrives later can be attributed to the version and variant that produced the
//! answer, in events and in live metrics.
//!
//! Every `complete()` writes one entry, so the memory is a ring of slots overwritten oldest
//! first, in place: once full, remembering a request copies its strings into the buffer the
//! slot already owns and allocates nothing (unless they are longer than the slot's last ones).
//! An index of slot positions, hashed by request id, finds them again.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::Mutex;

use super::event::FeedbackContext;

/// How many requests are remembered; older ones are forgotten first.
pub const REMEMBERED_REQUESTS: usize = 65_536;

/// Recent requests, oldest evicted first.
#[derive(Debug, Default)]
pub struct RecentRequests {
    inner: Mutex<Ring>,
}

/// What is remembered of a request, borrowed from its resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    /// The feature.
    pub feature: &'a str,
    /// The version.
    pub version: &'a str,
    /// The experiment, when one decided.
    pub experiment: Option<&'a str>,
    /// The variant, when an experiment decided.
    pub variant: Option<&'a str>,
}

#[derive(Debug, Default)]
struct Ring {
    hasher: DefaultHashBuilder,
    /// Positions in `slots`, found by the hash of their request id.
    index: HashTable<u32>,
    slots: Vec<Slot>,
    /// The slot overwritten next once every slot is taken: the oldest.
    next: usize,
}

/// One remembered request. Its id and facts share one buffer (`text`, cut at `ends`), so
/// overwriting a slot writes one heap block, next to the slot's neighbours in the ring's order
/// of first use, rather than five blocks scattered over the heap.
#[derive(Debug)]
struct Slot {
    hash: u64,
    text: String,
    /// Where the id, feature, version, experiment and variant end in `text`.
    ends: [usize; 5],
    has_experiment: bool,
    has_variant: bool,
}

impl Slot {
    fn new(hash: u64, request_id: &str, facts: RequestFacts<'_>) -> Slot {
        let mut slot = Slot {
            hash,
            text: String::new(),
            ends: [0; 5],
            has_experiment: false,
            has_variant: false,
        };
        slot.fill(hash, request_id, facts);
        slot
    }

    fn fill(&mut self, hash: u64, request_id: &str, facts: RequestFacts<'_>) {
        self.hash = hash;
        self.text.clear();
        let parts = [
            request_id,
            facts.feature,
            facts.version,
            facts.experiment.unwrap_or_default(),
            facts.variant.unwrap_or_default(),
        ];
        for (end, part) in self.ends.iter_mut().zip(parts) {
            self.text.push_str(part);
            *end = self.text.len();
        }
        self.has_experiment = facts.experiment.is_some();
        self.has_variant = facts.variant.is_some();
    }

    fn part(&self, index: usize) -> &str {
        let start = index
            .checked_sub(1)
            .and_then(|before| self.ends.get(before))
            .copied()
            .unwrap_or(0);
        let end = self.ends.get(index).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or_default()
    }

    fn request_id(&self) -> &str {
        self.part(0)
    }

    fn context(&self) -> FeedbackContext {
        FeedbackContext {
            feature: self.part(1).to_owned(),
            version: self.part(2).to_owned(),
            experiment: self.has_experiment.then(|| self.part(3).to_owned()),
            variant: self.has_variant.then(|| self.part(4).to_owned()),
        }
    }
}

impl Ring {
    fn position(&self, hash: u64, request_id: &str) -> Option<usize> {
        let slots = &self.slots;
        self.index
            .find(hash, |&position| {
                slots
                    .get(position as usize)
                    .is_some_and(|slot| slot.request_id() == request_id)
            })
            .map(|&position| position as usize)
    }

    fn remember(&mut self, request_id: &str, facts: RequestFacts<'_>) {
        let hash = self.hasher.hash_one(request_id);
        if let Some(slot) = self
            .position(hash, request_id)
            .and_then(|position| self.slots.get_mut(position))
        {
            // Remembered again: the newer facts replace the older, in the same place in line.
            slot.fill(hash, request_id, facts);
            return;
        }
        let Ring {
            index, slots, next, ..
        } = self;
        let position = if slots.len() < REMEMBERED_REQUESTS {
            slots.push(Slot::new(hash, request_id, facts));
            slots.len() - 1
        } else {
            let position = *next;
            *next = (position + 1) % REMEMBERED_REQUESTS;
            let Some(oldest) = slots.get_mut(position) else {
                return;
            };
            if let Ok(entry) = index.find_entry(oldest.hash, |&taken| taken as usize == position) {
                entry.remove();
            }
            oldest.fill(hash, request_id, facts);
            position
        };
        // Positions stay below REMEMBERED_REQUESTS, far inside u32.
        index.insert_unique(hash, position as u32, |&taken| {
            slots.get(taken as usize).map_or(0, |slot| slot.hash)
        });
    }
}

impl RecentRequests {
    /// Remembers `request_id`.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn remember(&self, request_id: &str, context: FeedbackContext) {
        self.remember_facts(
            request_id,
            RequestFacts {
                feature: &context.feature,
                version: &context.version,
                experiment: context.experiment.as_deref(),
                variant: context.variant.as_deref(),
            },
        );
    }

    /// Remembers `request_id` without the caller building owned copies: once the memory is
    /// full, this allocates nothing.
    pub fn remember_facts(&self, request_id: &str, facts: RequestFacts<'_>) {
        self.inner.lock().remember(request_id, facts);
    }

    /// What is remembered of `request_id`.
    pub fn get(&self, request_id: &str) -> Option<FeedbackContext> {
        let ring = self.inner.lock();
        let hash = ring.hasher.hash_one(request_id);
        let position = ring.position(hash, request_id)?;
        ring.slots.get(position).map(Slot::context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(version: &str) -> FeedbackContext {
        FeedbackContext {
            feature: "f".into(),
            version: version.into(),
            experiment: None,
            variant: None,
        }
    }

    #[test]
    fn remembers_and_forgets_the_oldest_beyond_capacity() {
        let recent = RecentRequests::default();
        for index in 0..=REMEMBERED_REQUESTS {
            recent.remember(&format!("req_{index}"), context("1.0.0"));
        }
        assert!(recent.get("req_0").is_none());
        assert!(recent.get("req_1").is_some());
        assert_eq!(
            recent.get(&format!("req_{REMEMBERED_REQUESTS}")),
            Some(context("1.0.0"))
        );
    }

    #[test]
    fn a_request_remembered_twice_keeps_the_newer_facts_and_its_place_in_line() {
        let recent = RecentRequests::default();
        recent.remember("req_a", context("1.0.0"));
        recent.remember("req_a", context("2.0.0"));
        assert_eq!(recent.get("req_a"), Some(context("2.0.0")));
        for index in 1..REMEMBERED_REQUESTS {
            recent.remember(&format!("req_{index}"), context("1.0.0"));
        }
        assert!(
            recent.get("req_a").is_some(),
            "exactly full: nothing evicted"
        );
        recent.remember("req_last", context("1.0.0"));
        assert!(
            recent.get("req_a").is_none(),
            "the first in line goes first"
        );
        assert!(recent.get("req_1").is_some());
    }

    #[test]
    fn overwritten_slots_take_the_new_experiment_and_variant_or_none() {
        let recent = RecentRequests::default();
        let with_variant = FeedbackContext {
            experiment: Some("exp".into()),
            variant: Some("treatment".into()),
            ..context("1.0.0")
        };
        recent.remember("req_0", with_variant.clone());
        for index in 1..REMEMBERED_REQUESTS {
            recent.remember(&format!("req_{index}"), context("1.0.0"));
        }
        // Overwrites req_0's slot, whose experiment and variant were set.
        recent.remember("req_new", context("3.0.0"));
        assert_eq!(recent.get("req_new"), Some(context("3.0.0")));
        // And a slot without them takes them.
        recent.remember("req_newer", with_variant.clone());
        assert_eq!(recent.get("req_newer"), Some(with_variant));
    }
}
