//! `wedge:edge/messaging`: publish/subscribe between apps through a [`MessageBus`], with
//! MQTT topic filters, grants per topic, and a bounded queue per subscription so a slow
//! or dead subscriber never delays the others. Queues are bounded in messages and in
//! bytes, each and all together ([`BusLimits`]), so no publisher (an app, or a broker
//! through the bridge) can make the host hold more than the limits say.

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
/// Bytes a subscription's queue holds when the bus is not told otherwise.
pub const DEFAULT_QUEUE_BYTES: u64 = 8 << 20;
/// Bytes all the queues of a bus hold together when it is not told otherwise.
pub const DEFAULT_BUS_BYTES: u64 = 64 << 20;
/// What a queued message costs beyond its topic and payload (its slot in the queue).
const MESSAGE_OVERHEAD: u64 = 64;

/// What a bus's queues may hold, and what a full queue gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusLimits {
    /// Messages each subscription queues.
    pub messages: usize,
    /// Bytes (topics and payloads) each subscription queues.
    pub queue_bytes: u64,
    /// Bytes all subscriptions queue together.
    pub bus_bytes: u64,
    /// What a full queue gives up.
    pub overflow: Overflow,
}

impl Default for BusLimits {
    fn default() -> Self {
        BusLimits {
            messages: DEFAULT_QUEUE,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            bus_bytes: DEFAULT_BUS_BYTES,
            overflow: Overflow::default(),
        }
    }
}

/// A bus's counters, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusCounters {
    /// Messages published on the bus.
    pub published: u64,
    /// Messages put in a subscription's queue.
    pub delivered: u64,
    /// Messages lost to a full queue (its own limits or the bus's), by the overflow
    /// policy.
    pub dropped: u64,
    /// Messages refused whole: over [`MAX_PAYLOAD`] (from the bridge's broker).
    pub refused: u64,
    /// Messages queued now, all subscriptions together.
    pub queued_messages: u64,
    /// Bytes queued now, all subscriptions together.
    pub queued_bytes: u64,
}

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
    limits: BusLimits,
    /// Bytes queued, all queues together (shared with each queue, which gives back
    /// what it pops).
    queued: Arc<AtomicU64>,
    published: AtomicU64,
    delivered: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    outlet: RwLock<Option<Outlet>>,
}

impl std::fmt::Debug for MessageBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageBus")
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// A subscription's queue.
pub(crate) struct Queue {
    /// What it takes: a message matching any of them, once.
    filters: Vec<TopicFilter>,
    held: Mutex<Held>,
    ready: Notify,
    dropped: AtomicU64,
    /// The bus's count of queued bytes.
    bus_queued: Arc<AtomicU64>,
}

/// The messages a queue holds, and their cost in bytes.
#[derive(Default)]
struct Held {
    messages: VecDeque<BusMessage>,
    bytes: u64,
}

/// What `message` costs a queue: its topic, payload and slot.
fn cost(message: &BusMessage) -> u64 {
    (message.topic.len() + message.payload.len()) as u64 + MESSAGE_OVERHEAD
}

impl MessageBus {
    /// A bus whose subscriptions queue up to `limits` (at least one message each).
    pub fn new(limits: BusLimits) -> MessageBus {
        MessageBus {
            inner: Arc::new(BusInner {
                subscriptions: RwLock::new(Vec::new()),
                limits: BusLimits {
                    messages: limits.messages.max(1),
                    ..limits
                },
                queued: Arc::new(AtomicU64::new(0)),
                published: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                outlet: RwLock::new(None),
            }),
        }
    }

    /// Counts a message refused before it reached the bus (a packet from the broker
    /// larger than the bridge reads).
    pub fn count_refused(&self) {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends what is published from now on to `outlet` as well.
    pub fn set_outlet(&self, outlet: Outlet) {
        *self.inner.outlet.write().unwrap_or_else(|p| p.into_inner()) = Some(outlet);
    }

    /// Publishes from inside the host (an app, or the bridge when `from_outside`, whose
    /// messages are not sent back out): delivers to the matching subscriptions and
    /// returns what the publisher must wait for before its next message, if the outlet
    /// is full. A payload over [`MAX_PAYLOAD`] is refused whole (and counted).
    pub fn publish(
        &self,
        message: BusMessage,
        qos: Delivery,
        from_outside: bool,
    ) -> Option<OutletWait> {
        if message.payload.len() > MAX_PAYLOAD {
            self.count_refused();
            return None;
        }
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
            if queue.filters.iter().any(|f| f.matches(&message.topic))
                && self.push(&subscriptions, queue, message.clone())
            {
                delivered += 1;
            }
        }
        self.inner
            .delivered
            .fetch_add(delivered as u64, Ordering::Relaxed);
        wait
    }

    /// Queues `message` on `queue` within the limits, giving up messages as the
    /// overflow policy says; whether it was queued. When the bus as a whole is full,
    /// the queue holding the most bytes gives up messages (its oldest, or with
    /// `drop-newest` its newest), so one subscriber hoarding the bus's room cannot
    /// starve the others.
    fn push(&self, subscriptions: &[Arc<Queue>], queue: &Arc<Queue>, message: BusMessage) -> bool {
        let limits = &self.inner.limits;
        let size = cost(&message);
        if size > limits.queue_bytes || size > limits.bus_bytes {
            // It would never fit: the queue keeps what it holds.
            self.lost(queue);
            return false;
        }
        // Room in the queue first: what it gives up frees room on the bus too.
        {
            let mut held = queue.lock();
            if !self.make_room(&mut held, queue, size) {
                return false;
            }
            if self.reserve(size) {
                held.bytes += size;
                held.messages.push_back(message);
                drop(held);
                queue.ready.notify_one();
                return true;
            }
        }
        // Room on the bus, one queue locked at a time.
        while !self.reserve(size) {
            let fullest = subscriptions
                .iter()
                .filter_map(|q| {
                    let bytes = q.lock().bytes;
                    (bytes > 0).then_some((bytes, q))
                })
                .max_by_key(|(bytes, _)| *bytes)
                .map(|(_, q)| q);
            let freed = match fullest {
                Some(q) if Arc::ptr_eq(q, queue) && limits.overflow == Overflow::DropNewest => {
                    false
                }
                Some(q) => q.give_up(limits.overflow),
                None => false,
            };
            if !freed {
                self.lost(queue);
                return false;
            }
            self.lost(fullest.expect("freed from one"));
        }
        {
            // Again, as another publisher may have filled the queue meanwhile.
            let mut held = queue.lock();
            if !self.make_room(&mut held, queue, size) {
                self.inner.queued.fetch_sub(size, Ordering::AcqRel);
                return false;
            }
            held.bytes += size;
            held.messages.push_back(message);
        }
        queue.ready.notify_one();
        true
    }

    /// Makes room for `size` more bytes in `queue` (whose messages are `held`) within
    /// its own limits, as the overflow policy says; false (the message lost) if the
    /// policy keeps what is queued.
    fn make_room(&self, held: &mut Held, queue: &Queue, size: u64) -> bool {
        let limits = &self.inner.limits;
        while held.messages.len() >= limits.messages || held.bytes + size > limits.queue_bytes {
            if limits.overflow == Overflow::DropNewest || held.messages.is_empty() {
                self.lost(queue);
                return false;
            }
            queue.take_front(held);
            self.lost(queue);
        }
        true
    }

    /// Counts a message `queue` lost.
    fn lost(&self, queue: &Queue) {
        queue.dropped.fetch_add(1, Ordering::Relaxed);
        self.inner.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts `size` more bytes queued on the bus, if the bus limit allows.
    fn reserve(&self, size: u64) -> bool {
        let limit = self.inner.limits.bus_bytes;
        self.inner
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(size).filter(|&n| n <= limit)
            })
            .is_ok()
    }

    /// Subscribes to the messages matching any of `filters` (each delivered once);
    /// dropping the subscription unsubscribes.
    pub(crate) fn subscribe(&self, filters: Vec<TopicFilter>) -> Subscription {
        let queue = Arc::new(Queue {
            filters,
            held: Mutex::new(Held::default()),
            ready: Notify::new(),
            dropped: AtomicU64::new(0),
            bus_queued: self.inner.queued.clone(),
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
        // Nothing pushes to it any more: give its bytes back to the bus.
        let mut held = queue.lock();
        self.inner.queued.fetch_sub(held.bytes, Ordering::AcqRel);
        *held = Held::default();
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

    /// Its counters, and what its queues hold now.
    pub fn counters(&self) -> BusCounters {
        let i = &self.inner;
        let queued_messages = i
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|q| q.lock().messages.len() as u64)
            .sum();
        BusCounters {
            published: i.published.load(Ordering::Relaxed),
            delivered: i.delivered.load(Ordering::Relaxed),
            dropped: i.dropped.load(Ordering::Relaxed),
            refused: i.refused.load(Ordering::Relaxed),
            queued_messages,
            queued_bytes: i.queued.load(Ordering::Relaxed),
        }
    }

    /// Its limits.
    pub fn limits(&self) -> BusLimits {
        self.inner.limits
    }
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the oldest message out of `held`, giving its bytes back.
    fn take_front(&self, held: &mut Held) -> Option<BusMessage> {
        let message = held.messages.pop_front()?;
        let size = cost(&message);
        held.bytes -= size;
        self.bus_queued.fetch_sub(size, Ordering::AcqRel);
        Some(message)
    }

    fn pop(&self) -> Option<BusMessage> {
        let mut held = self.lock();
        self.take_front(&mut held)
    }

    /// Gives up one message as `overflow` says, for room on the bus; whether it held
    /// one.
    fn give_up(&self, overflow: Overflow) -> bool {
        let mut held = self.lock();
        let message = match overflow {
            Overflow::DropOldest => held.messages.pop_front(),
            Overflow::DropNewest => held.messages.pop_back(),
        };
        let Some(message) = message else {
            return false;
        };
        let size = cost(&message);
        held.bytes -= size;
        self.bus_queued.fetch_sub(size, Ordering::AcqRel);
        true
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
        let bus = MessageBus::new(limits(8, Overflow::DropOldest));
        let filters = ["a/#", "a/+/c"].map(|f| f.parse().unwrap()).to_vec();
        let sub = bus.subscribe(filters);
        bus.publish(message("a/b/c"), Delivery::AtMostOnce, false);
        bus.publish(message("x/y"), Delivery::AtMostOnce, false);
        assert_eq!(&*sub.queue().recv().await.topic, "a/b/c");
        assert!(sub.queue().next(Duration::ZERO).await.is_none());
        let c = bus.counters();
        assert_eq!((c.published, c.delivered, c.dropped), (2, 1, 0));
        assert_eq!((c.queued_messages, c.queued_bytes), (0, 0));
    }

    #[test]
    fn dropping_a_subscription_leaves_nothing_on_the_bus() {
        let bus = MessageBus::new(limits(8, Overflow::DropOldest));
        let sub = bus.subscribe(vec!["a/#".parse().unwrap()]);
        assert_eq!(bus.filters().len(), 1);
        drop(sub);
        assert!(bus.filters().is_empty());
        bus.publish(message("a/b"), Delivery::AtMostOnce, false);
        let c = bus.counters();
        assert_eq!((c.published, c.delivered, c.dropped), (1, 0, 0));
    }

    fn limits(messages: usize, overflow: Overflow) -> BusLimits {
        BusLimits {
            messages,
            overflow,
            ..BusLimits::default()
        }
    }

    fn sized(topic: &str, bytes: usize) -> BusMessage {
        BusMessage {
            topic: topic.into(),
            payload: Bytes::from(vec![0u8; bytes]),
        }
    }

    #[test]
    fn a_queue_holds_no_more_bytes_than_its_limit_and_drops_the_oldest() {
        let size = cost(&sized("a", 1000));
        let bus = MessageBus::new(BusLimits {
            queue_bytes: 3 * size,
            ..BusLimits::default()
        });
        let sub = bus.subscribe(vec!["a".parse().unwrap()]);
        for i in 0..10 {
            let mut m = sized("a", 1000);
            m.payload = Bytes::from(vec![i; 1000]);
            bus.publish(m, Delivery::AtMostOnce, false);
        }
        let c = bus.counters();
        assert_eq!(
            (c.queued_messages, c.queued_bytes, c.dropped),
            (3, 3 * size, 7)
        );
        assert_eq!(sub.queue().pop().unwrap().payload[0], 7);
        assert_eq!(bus.counters().queued_bytes, 2 * size);
        drop(sub);
        assert_eq!(bus.counters().queued_bytes, 0);
    }

    #[test]
    fn the_bus_as_a_whole_holds_no_more_bytes_than_its_limit() {
        let size = cost(&sized("a", 1000));
        for overflow in [Overflow::DropOldest, Overflow::DropNewest] {
            let bus = MessageBus::new(BusLimits {
                bus_bytes: 5 * size,
                overflow,
                ..BusLimits::default()
            });
            let subs: Vec<_> = (0..4)
                .map(|_| bus.subscribe(vec!["a".parse().unwrap()]))
                .collect();
            for _ in 0..100 {
                bus.publish(sized("a", 1000), Delivery::AtMostOnce, false);
            }
            let c = bus.counters();
            assert!(c.queued_bytes <= 5 * size, "{c:?}");
            assert_eq!(c.queued_messages * size, c.queued_bytes, "{c:?}");
            assert!(c.dropped > 0, "{c:?}");
            // A message over the payload limit is refused whole.
            bus.publish(sized("a", MAX_PAYLOAD + 1), Delivery::AtMostOnce, true);
            assert_eq!(bus.counters().refused, 1);
            drop(subs);
            assert_eq!(bus.counters().queued_bytes, 0);
        }
    }

    #[test]
    fn a_full_bus_takes_room_from_the_queue_holding_the_most() {
        let size = cost(&sized("h", 1000));
        let bus = MessageBus::new(BusLimits {
            bus_bytes: 5 * size,
            ..BusLimits::default()
        });
        let hoarder = bus.subscribe(vec!["h".parse().unwrap()]);
        let other = bus.subscribe(vec!["o".parse().unwrap()]);
        for _ in 0..10 {
            bus.publish(sized("h", 1000), Delivery::AtMostOnce, false);
        }
        bus.publish(sized("o", 1000), Delivery::AtMostOnce, false);
        assert_eq!(other.queue().pop().unwrap().payload.len(), 1000);
        assert_eq!(other.queue.dropped.load(Ordering::Relaxed), 0);
        assert_eq!(hoarder.queue.dropped.load(Ordering::Relaxed), 6);
        assert_eq!(bus.counters().queued_bytes, 4 * size);
    }

    #[test]
    fn a_message_larger_than_a_queue_is_dropped() {
        let bus = MessageBus::new(BusLimits {
            queue_bytes: 100,
            ..BusLimits::default()
        });
        let sub = bus.subscribe(vec!["a".parse().unwrap()]);
        bus.publish(sized("a", 10), Delivery::AtMostOnce, false);
        bus.publish(sized("a", 200), Delivery::AtMostOnce, false);
        let c = bus.counters();
        assert_eq!((c.delivered, c.dropped, c.queued_messages), (1, 1, 1));
        assert_eq!(sub.queue().pop().unwrap().payload.len(), 10);
    }
}
