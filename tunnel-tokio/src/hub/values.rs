//! The hub's live values: what agents' scan groups reported, the latest of
//! every point, and subscriptions to what comes next.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{self, Stream, StreamExt};
use outpost_acquisition::{Quality, Update};
use outpost_modbus_core::scan::Value;
use outpost_tunnel_proto::AgentId;
use tokio::sync::broadcast;

/// One reported value of one point of an agent's scan group.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct PointValue {
    /// The agent that polled it.
    pub agent: AgentId,
    /// The device, by the agent's name for it.
    pub device: String,
    /// The scan group.
    pub group: String,
    /// The point.
    pub point: String,
    /// When the agent read it (milliseconds since the Unix epoch, by the
    /// agent's clock).
    pub at_ms: u64,
    /// How far it can be trusted.
    pub quality: Quality,
    /// The value read, or the last one read when the quality is not good
    /// (none if it was never read).
    pub value: Option<Value>,
    /// Part of a full report of its group (a first scan, an integrity
    /// snapshot, or one the hub asked for) rather than a change.
    pub snapshot: bool,
    /// The group's sequence number of this sample.
    pub seq: u64,
}

impl PointValue {
    pub(crate) fn new(agent: &AgentId, update: Update) -> Self {
        PointValue {
            agent: agent.clone(),
            device: update.device,
            group: update.group,
            point: update.point,
            at_ms: update.sample.at_ms,
            quality: update.sample.quality,
            value: update.sample.value,
            snapshot: update.sample.snapshot,
            seq: update.sample.seq,
        }
    }
}

/// Which points a subscription follows: every field set must match (all
/// points by default).
///
/// ```
/// use outpost_tunnel_tokio::hub::Filter;
///
/// let boiler = Filter::all().agent("plant-7").device("plc-1").group("boiler");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    agent: Option<String>,
    device: Option<String>,
    group: Option<String>,
    point: Option<String>,
}

impl Filter {
    /// Every point of every agent.
    pub fn all() -> Self {
        Filter::default()
    }

    /// Only the points of this agent.
    pub fn agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = Some(agent.into());
        self
    }

    /// Only the points of devices of this name.
    pub fn device(mut self, device: impl Into<String>) -> Self {
        self.device = Some(device.into());
        self
    }

    /// Only the points of scan groups of this name.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Only points of this name.
    pub fn point(mut self, point: impl Into<String>) -> Self {
        self.point = Some(point.into());
        self
    }

    /// Whether it follows the agent `agent`.
    pub(crate) fn takes_agent(&self, agent: &AgentId) -> bool {
        self.agent.as_deref().is_none_or(|a| a == agent.as_str())
    }

    /// Whether it follows the points of this device and group.
    pub(crate) fn takes_group(&self, device: &str, group: &str) -> bool {
        self.device.as_deref().is_none_or(|d| d == device) && self.group.as_deref().is_none_or(|g| g == group)
    }

    /// Whether it follows `value`.
    pub fn matches(&self, value: &PointValue) -> bool {
        self.takes_agent(&value.agent)
            && self.takes_group(&value.device, &value.group)
            && self.point.as_deref().is_none_or(|p| p == value.point)
    }
}

/// A subscriber fell behind: this many values were not kept for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the subscription fell behind and missed {0} values")]
pub struct Lagged(pub u64);

/// The values of the points a [`Filter`] follows: the latest of each
/// first, then every new one as it arrives (a value may come twice where
/// the two meet). A [`futures::Stream`]; a subscriber that falls further
/// behind than the hub keeps (see
/// [`crate::hub::HubBuilder::subscription_capacity`]) gets a [`Lagged`]
/// and goes on with the newest.
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Result<PointValue, Lagged>> + Send>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

impl Subscription {
    pub(crate) fn new(current: Vec<PointValue>, live: broadcast::Receiver<Arc<PointValue>>, filter: Filter) -> Self {
        let live = stream::unfold((live, filter), |(mut live, filter)| async move {
            loop {
                match live.recv().await {
                    Ok(value) if filter.matches(&value) => return Some((Ok((*value).clone()), (live, filter))),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => return Some((Err(Lagged(n)), (live, filter))),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Subscription {
            inner: Box::pin(stream::iter(current.into_iter().map(Ok)).chain(live)),
        }
    }

    /// The next value; `None` once the hub is gone.
    pub async fn recv(&mut self) -> Option<Result<PointValue, Lagged>> {
        self.next().await
    }
}

impl Stream for Subscription {
    type Item = Result<PointValue, Lagged>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(agent: &str, point: &str, seq: u64) -> PointValue {
        PointValue {
            agent: AgentId::new(agent).unwrap(),
            device: "plc-1".into(),
            group: "tank".into(),
            point: point.into(),
            at_ms: 1,
            quality: Quality::Good,
            value: None,
            snapshot: false,
            seq,
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_far_and_goes_on() {
        let (tx, rx) = broadcast::channel(2);
        let mut subscription = Subscription::new(vec![value("a", "first", 0)], rx, Filter::all().point("level"));
        for seq in 1..=5 {
            tx.send(Arc::new(value("a", "level", seq))).unwrap();
        }
        // What was current comes first, whatever the filter said of it.
        assert_eq!(subscription.recv().await.unwrap().unwrap().point, "first");
        assert_eq!(subscription.recv().await, Some(Err(Lagged(3))));
        assert_eq!(subscription.recv().await.unwrap().unwrap().seq, 4);
        assert_eq!(subscription.recv().await.unwrap().unwrap().seq, 5);
        // What the filter does not follow is passed over.
        tx.send(Arc::new(value("a", "other", 6))).unwrap();
        tx.send(Arc::new(value("a", "level", 7))).unwrap();
        assert_eq!(subscription.recv().await.unwrap().unwrap().seq, 7);
        drop(tx);
        assert_eq!(subscription.recv().await, None);
    }

    #[test]
    fn a_filter_takes_what_every_field_it_sets_matches() {
        let v = value("plant-7", "level", 0);
        assert!(Filter::all().matches(&v));
        assert!(Filter::all()
            .agent("plant-7")
            .device("plc-1")
            .group("tank")
            .point("level")
            .matches(&v));
        for filter in [
            Filter::all().agent("plant-8"),
            Filter::all().device("plc-2"),
            Filter::all().group("boiler"),
            Filter::all().point("flow"),
        ] {
            assert!(!filter.matches(&v), "{filter:?}");
        }
    }
}
