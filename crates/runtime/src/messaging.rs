//! `wedge:edge/messaging`: publish/subscribe between apps through a [`MessageBus`], with
//! MQTT topic filters, grants per topic, and a bounded queue per subscription so a slow
//! or dead subscriber never delays the others.

use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;
use wasmtime::component::{HasData, Resource, ResourceTable};
use wedge_manifest::TopicFilter;

#[allow(missing_docs, clippy::all)]
pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wedge:edge/messaging-client",
        imports: {
            "wedge:edge/messaging.publish": async | trappable,
            "wedge:edge/messaging.[method]subscription.receive": async | trappable,
            "wedge:edge/messaging.[method]subscription.receive-many": async | trappable,
            default: trappable,
        },
        with: { "wedge:edge/messaging.subscription": super::Subscription },
    });
}
use bindings::wedge::edge::messaging;
use bindings::wedge::edge::types::{self, Error, Message, Qos};

/// Largest payload a guest may publish.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Subscriptions one instance may hold at once.
const MAX_SUBSCRIPTIONS: usize = 64;
/// Messages a subscription's queue holds when the bus is not told otherwise.
pub const DEFAULT_QUEUE: usize = 1024;

/// What a full subscription queue gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// The oldest queued message (the default: a subscriber sees the latest data).
    #[default]
    DropOldest,
    /// The message arriving.
    DropNewest,
}

impl std::str::FromStr for Overflow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "drop-oldest" => Ok(Overflow::DropOldest),
            "drop-newest" => Ok(Overflow::DropNewest),
            _ => Err(format!(
                "invalid overflow policy `{s}`: use `drop-oldest` or `drop-newest`"
            )),
        }
    }
}

/// One message on the bus. Cheap to clone: the topic and payload are shared.
#[derive(Debug, Clone)]
pub struct BusMessage {
    /// The topic it was published to.
    pub topic: Arc<str>,
    /// The payload.
    pub payload: Bytes,
}

/// Where messages published on a bus also go (the daemon's MQTT bridge). It returns a
/// future when it cannot take the message at once; the publisher waits for it
/// (backpressure instead of a lost message).
pub type Outlet = Arc<dyn Fn(&BusMessage, Delivery) -> Option<OutletWait> + Send + Sync>;

/// What a publisher waits for when the [`Outlet`] is full.
pub type OutletWait = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// The delivery guarantee (MQTT QoS) a message was published with, for an [`Outlet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// At most once.
    AtMostOnce,
    /// At least once.
    AtLeastOnce,
}

/// The message bus of a process: every subscription with its queue. Cheap to clone;
/// clones share everything.
#[derive(Clone)]
pub struct MessageBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    subscriptions: RwLock<Vec<Arc<Queue>>>,
    capacity: usize,
    overflow: Overflow,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    outlet: RwLock<Option<Outlet>>,
}

impl std::fmt::Debug for MessageBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBus")
            .field("capacity", &self.inner.capacity)
            .field("overflow", &self.inner.overflow)
            .finish_non_exhaustive()
    }
}

/// A subscription's queue.
pub(crate) struct Queue {
    /// What it takes: a message matching any of them, once.
    filters: Vec<TopicFilter>,
    messages: Mutex<VecDeque<BusMessage>>,
    ready: Notify,
    dropped: AtomicU64,
}

impl MessageBus {
    /// A bus whose subscriptions queue up to `capacity` messages each, giving up
    /// messages as `overflow` says when full.
    pub fn new(capacity: usize, overflow: Overflow) -> MessageBus {
        MessageBus {
            inner: Arc::new(BusInner {
                subscriptions: RwLock::new(Vec::new()),
                capacity: capacity.max(1),
                overflow,
                published: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                outlet: RwLock::new(None),
            }),
        }
    }

    /// Sends what is published from now on to `outlet` as well.
    pub fn set_outlet(&self, outlet: Outlet) {
        *self.inner.outlet.write().unwrap_or_else(|p| p.into_inner()) = Some(outlet);
    }

    /// Publishes from inside the host (an app, or the bridge when `from_outside`, whose
    /// messages are not sent back out): delivers to the matching subscriptions and
    /// returns what the publisher must wait for before its next message, if the outlet
    /// is full.
    pub fn publish(
        &self,
        message: BusMessage,
        qos: Delivery,
        from_outside: bool,
    ) -> Option<OutletWait> {
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        let mut wait = None;
        if !from_outside {
            let outlet = self.inner.outlet.read().unwrap_or_else(|p| p.into_inner());
            if let Some(outlet) = outlet.as_ref() {
                wait = outlet(&message, qos);
            }
        }
        let subscriptions = self
            .inner
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let mut delivered = 0;
        for queue in subscriptions.iter() {
            if queue.filters.iter().any(|f| f.matches(&message.topic)) {
                self.push(queue, message.clone());
                delivered += 1;
            }
        }
        self.inner
            .delivered
            .fetch_add(delivered as u64, Ordering::Relaxed);
        wait
    }

    fn push(&self, queue: &Queue, message: BusMessage) {
        {
            let mut messages = queue.messages.lock().unwrap_or_else(|p| p.into_inner());
            if messages.len() >= self.inner.capacity {
                queue.dropped.fetch_add(1, Ordering::Relaxed);
                self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                match self.inner.overflow {
                    Overflow::DropOldest => {
                        messages.pop_front();
                    }
                    Overflow::DropNewest => return,
                }
            }
            messages.push_back(message);
        }
        queue.ready.notify_one();
    }

    /// Subscribes to the messages matching any of `filters` (each delivered once);
    /// dropping the subscription unsubscribes.
    pub(crate) fn subscribe(&self, filters: Vec<TopicFilter>) -> Subscription {
        let queue = Arc::new(Queue {
            filters,
            messages: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        self.inner
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(queue.clone());
        Subscription {
            queue,
            bus: self.clone(),
        }
    }

    fn unsubscribe(&self, queue: &Arc<Queue>) {
        self.inner
            .subscriptions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|q| !Arc::ptr_eq(q, queue));
    }

    /// Filters subscribed to now, one per subscription (for a bridge to mirror).
    pub fn filters(&self) -> Vec<TopicFilter> {
        let subscriptions = self
            .inner
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner());
        subscriptions
            .iter()
            .flat_map(|q| q.filters.iter().cloned())
            .collect()
    }

    /// Counters: messages published, deliveries made, and messages dropped from full
    /// queues.
    pub fn counters(&self) -> (u64, u64, u64) {
        let i = &self.inner;
        (
            i.published.load(Ordering::Relaxed),
            i.delivered.load(Ordering::Relaxed),
            i.dropped.load(Ordering::Relaxed),
        )
    }
}

impl Queue {
    fn pop(&self) -> Option<BusMessage> {
        self.messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    /// The next message, waiting for one as long as it takes.
    pub(crate) async fn recv(&self) -> BusMessage {
        loop {
            let notified = self.ready.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if let Some(message) = self.pop() {
                return message;
            }
            notified.await;
        }
    }

    /// The next message, waiting up to `timeout` for one.
    async fn next(&self, timeout: Duration) -> Option<BusMessage> {
        if timeout.is_zero() {
            return self.pop();
        }
        tokio::time::timeout(timeout, self.recv()).await.ok()
    }
}

/// What one app may do on a bus: the topics it may publish to and the filters it may
/// subscribe with.
#[derive(Debug, Clone)]
pub struct Messaging {
    /// The bus.
    pub bus: MessageBus,
    /// Filters covering the topics it may publish to.
    pub publish: Vec<TopicFilter>,
    /// Filters covering what it may subscribe to.
    pub subscribe: Vec<TopicFilter>,
}

/// A subscription on a bus: the resource behind a guest's `subscription` handle, or
/// the host's own for a push handler. Dropping it unsubscribes, so an instance that
/// ends holding subscriptions leaves nothing behind on the bus.
pub struct Subscription {
    queue: Arc<Queue>,
    bus: MessageBus,
}

impl Subscription {
    /// Its queue.
    pub(crate) fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.unsubscribe(&self.queue);
    }
}

/// The store data the messaging host functions see.
pub(crate) struct MsgView<'a> {
    pub(crate) access: Option<&'a Messaging>,
    pub(crate) table: &'a mut ResourceTable,
    /// Subscriptions the instance holds.
    pub(crate) subscriptions: &'a mut usize,
}

/// Marks [`MsgView`] as the data of the generated `add_to_linker` functions.
pub(crate) struct HasMsg;

impl HasData for HasMsg {
    type Data<'a> = MsgView<'a>;
}

/// Adds `wedge:edge/{types,messaging}` to `linker`; `view` reaches the store data's part.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    view: fn(&mut T) -> MsgView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, HasMsg>(linker, view)?;
    messaging::add_to_linker::<T, HasMsg>(linker, view)?;
    Ok(())
}

fn denied(what: &str, topic: &str) -> Error {
    Error::PermissionDenied(format!("no grant lets this app {what} `{topic}`"))
}

fn to_guest(m: BusMessage) -> Message {
    Message {
        topic: m.topic.to_string(),
        payload: m.payload.to_vec(),
    }
}

impl types::Host for MsgView<'_> {}

impl messaging::Host for MsgView<'_> {
    async fn publish(
        &mut self,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> wasmtime::Result<Result<(), Error>> {
        let Some(access) = self.access else {
            return Ok(Err(denied("publish to", &topic)));
        };
        if let Err(e) = TopicFilter::validate_topic(&topic) {
            return Ok(Err(Error::InvalidTopic(e.to_string())));
        }
        if !access.publish.iter().any(|f| f.matches(&topic)) {
            return Ok(Err(denied("publish to", &topic)));
        }
        if payload.len() > MAX_PAYLOAD {
            return Ok(Err(Error::PayloadTooLarge(MAX_PAYLOAD as u64)));
        }
        let qos = match qos {
            Qos::AtMostOnce => Delivery::AtMostOnce,
            Qos::AtLeastOnce => Delivery::AtLeastOnce,
        };
        let message = BusMessage {
            topic: topic.into(),
            payload: payload.into(),
        };
        if let Some(wait) = access.bus.publish(message, qos, false) {
            wait.await;
        }
        Ok(Ok(()))
    }

    fn subscribe(
        &mut self,
        filter: String,
    ) -> wasmtime::Result<Result<Resource<Subscription>, Error>> {
        let Some(access) = self.access else {
            return Ok(Err(denied("subscribe to", &filter)));
        };
        let parsed: TopicFilter = match filter.parse() {
            Ok(f) => f,
            Err(e) => return Ok(Err(Error::InvalidTopic(e.to_string()))),
        };
        if !access.subscribe.iter().any(|g| g.covers(&parsed)) {
            return Ok(Err(denied("subscribe to", &filter)));
        }
        if *self.subscriptions >= MAX_SUBSCRIPTIONS {
            return Ok(Err(Error::LimitExceeded));
        }
        *self.subscriptions += 1;
        Ok(Ok(self.table.push(access.bus.subscribe(vec![parsed]))?))
    }
}

impl messaging::HostSubscription for MsgView<'_> {
    fn filter(&mut self, s: Resource<Subscription>) -> wasmtime::Result<String> {
        let filters = &self.table.get(&s)?.queue.filters;
        Ok(filters.first().map(ToString::to_string).unwrap_or_default())
    }

    async fn receive(
        &mut self,
        s: Resource<Subscription>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<Message>, Error>> {
        let queue = self.table.get(&s)?.queue.clone();
        let timeout = Duration::from_millis(timeout_ms.into());
        Ok(Ok(queue.next(timeout).await.map(to_guest)))
    }

    async fn receive_many(
        &mut self,
        s: Resource<Subscription>,
        max: u32,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<Message>, Error>> {
        let queue = self.table.get(&s)?.queue.clone();
        let timeout = Duration::from_millis(timeout_ms.into());
        let mut out = Vec::new();
        if max == 0 {
            return Ok(Ok(out));
        }
        if let Some(first) = queue.next(timeout).await {
            out.push(to_guest(first));
            while out.len() < max as usize {
                match queue.pop() {
                    Some(m) => out.push(to_guest(m)),
                    None => break,
                }
            }
        }
        Ok(Ok(out))
    }

    fn dropped(&mut self, s: Resource<Subscription>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&s)?.queue.dropped.load(Ordering::Relaxed))
    }

    fn drop(&mut self, s: Resource<Subscription>) -> wasmtime::Result<()> {
        self.table.delete(s)?;
        *self.subscriptions = self.subscriptions.saturating_sub(1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str) -> BusMessage {
        BusMessage {
            topic: topic.into(),
            payload: Bytes::from_static(b"x"),
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_message_matching_several_filters_of_one_subscription_comes_once() {
        let bus = MessageBus::new(8, Overflow::DropOldest);
        let filters = ["a/#", "a/+/c"].map(|f| f.parse().unwrap()).to_vec();
        let sub = bus.subscribe(filters);
        bus.publish(message("a/b/c"), Delivery::AtMostOnce, false);
        bus.publish(message("x/y"), Delivery::AtMostOnce, false);
        assert_eq!(&*sub.queue().recv().await.topic, "a/b/c");
        assert!(sub.queue().next(Duration::ZERO).await.is_none());
        assert_eq!(bus.counters(), (2, 1, 0));
    }

    #[test]
    fn dropping_a_subscription_leaves_nothing_on_the_bus() {
        let bus = MessageBus::new(8, Overflow::DropOldest);
        let sub = bus.subscribe(vec!["a/#".parse().unwrap()]);
        assert_eq!(bus.filters().len(), 1);
        drop(sub);
        assert!(bus.filters().is_empty());
        bus.publish(message("a/b"), Delivery::AtMostOnce, false);
        assert_eq!(bus.counters(), (1, 0, 0));
    }
}
