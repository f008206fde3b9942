//! A bounded memory of recent requests (request id to feature, version, experiment, variant), so
//! feedback that arrives later can be attributed to the version and variant that produced the
//! answer, in events and in live metrics.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;

use super::event::FeedbackContext;

/// How many requests are remembered; older ones are forgotten first.
pub const REMEMBERED_REQUESTS: usize = 65_536;

/// Recent requests, oldest evicted first.
#[derive(Debug, Default)]
pub struct RecentRequests {
    inner: Mutex<(HashMap<String, FeedbackContext>, VecDeque<String>)>,
}

impl RecentRequests {
    /// Remembers `request_id`.
    pub fn remember(&self, request_id: &str, context: FeedbackContext) {
        let mut inner = self.inner.lock();
        let (map, order) = &mut *inner;
        if map.insert(request_id.to_string(), context).is_none() {
            order.push_back(request_id.to_string());
        }
        while order.len() > REMEMBERED_REQUESTS {
            if let Some(oldest) = order.pop_front() {
                map.remove(&oldest);
            }
        }
    }

    /// What is remembered of `request_id`.
    pub fn get(&self, request_id: &str) -> Option<FeedbackContext> {
        self.inner.lock().0.get(request_id).cloned()
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
        assert_eq!(
            recent.get(&format!("req_{REMEMBERED_REQUESTS}")),
            Some(context("1.0.0"))
        );
    }
}
