//! wedge's messaging between the device's apps: `wedge:edge/messaging@0.1.0` as the
//! core-module imports `wit-bindgen c` makes for it (the component model's canonical
//! ABI, lowered here by hand), so that the core module `wedge run` makes a component of
//! on Linux runs here unchanged.
//!
//! Grants and topic rules are wedge's (`wedge-topic`): an app publishes to the topics
//! its publish filters match and subscribes with the filters its subscribe filters
//! cover; a wildcard at the first level never reaches `$` topics. Each subscription has
//! its own queue of [`QUEUE_DEPTH`] messages which, when full, loses its oldest message
//! (counted by `dropped`), so a slow app never holds up the publisher or other apps.

use crate::app::AppState;
use crate::guest::{self, Guest, OutOfBounds};
use crate::wait;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use spin::mutex::SpinMutex;
use wasmtime::{Caller, Extern, Linker};

/// The module name of the messaging imports.
pub const MODULE: &str = "wedge:edge/messaging@0.1.0";

/// Largest payload an app may publish, in bytes.
pub const MAX_PAYLOAD: usize = 4096;

/// Messages a subscription holds before it loses the oldest.
pub const QUEUE_DEPTH: usize = 16;

/// Subscriptions an app may hold at once.
pub const MAX_SUBSCRIPTIONS: usize = 8;

/// What an app may publish to and subscribe to: MQTT topic filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Topics the app may publish to: those these filters match.
    pub publish: Vec<String>,
    /// Filters the app may subscribe with: those these filters cover.
    pub subscribe: Vec<String>,
}

/// The device's message bus: every live subscription of every app.
#[derive(Default)]
pub struct Bus {
    queues: SpinMutex<Vec<Weak<Queue>>>,
}

impl Bus {
    /// Queues `message` on every subscription whose filter matches its topic.
    fn publish(&self, message: &Message) {
        let mut queues = self.queues.lock();
        queues.retain(|queue| queue.strong_count() > 0);
        for queue in queues.iter().filter_map(Weak::upgrade) {
            if wedge_topic::matches(&queue.filter, &message.topic) {
                queue.push(message.clone());
            }
        }
    }

    /// A new subscription with `filter`; dropping the last reference unsubscribes.
    fn subscribe(&self, filter: String) -> Arc<Queue> {
        let queue = Arc::new(Queue {
            filter,
            held: SpinMutex::new(Held::default()),
        });
        let mut queues = self.queues.lock();
        queues.retain(|queue| queue.strong_count() > 0);
        queues.push(Arc::downgrade(&queue));
        queue
    }
}

/// A published message, shared by the queues it went to.
#[derive(Clone)]
struct Message {
    topic: Arc<str>,
    payload: Arc<[u8]>,
}

/// One subscription's queue.
struct Queue {
    filter: String,
    held: SpinMutex<Held>,
}

#[derive(Default)]
struct Held {
    messages: VecDeque<Message>,
    dropped: u64,
}

impl Queue {
    fn push(&self, message: Message) {
        let mut held = self.held.lock();
        if held.messages.len() == QUEUE_DEPTH {
            held.messages.pop_front();
            held.dropped += 1;
        }
        held.messages.push_back(message);
    }

    fn pop(&self) -> Option<Message> {
        self.held.lock().messages.pop_front()
    }
}

/// An app's side of the bus: its grants and its subscriptions (a handle is an index
/// plus one, as the component model numbers them).
pub(crate) struct Messaging {
    bus: Arc<Bus>,
    grants: Grants,
    subscriptions: Vec<Option<Arc<Queue>>>,
}

impl Messaging {
    pub(crate) fn new(bus: Arc<Bus>, grants: Grants) -> Messaging {
        Messaging {
            bus,
            grants,
            subscriptions: Vec::new(),
        }
    }

    fn queue(&self, handle: u32) -> wasmtime::Result<Arc<Queue>> {
        let slot = (handle as usize)
            .checked_sub(1)
            .and_then(|i| self.subscriptions.get(i));
        slot.cloned()
            .flatten()
            .ok_or_else(|| trap(format!("unknown subscription handle {handle}")))
    }

    fn publish(&self, topic: String, payload: Vec<u8>) -> Result<(), Error> {
        allowed(
            &topic,
            false,
            &self.grants.publish,
            wedge_topic::matches,
            "publish to",
        )?;
        if payload.len() > MAX_PAYLOAD {
            return Err(Error::PayloadTooLarge(MAX_PAYLOAD as u64));
        }
        self.bus.publish(&Message {
            topic: topic.into(),
            payload: payload.into(),
        });
        Ok(())
    }

    fn subscribe(&mut self, filter: String) -> Result<u32, Error> {
        allowed(
            &filter,
            true,
            &self.grants.subscribe,
            wedge_topic::covers,
            "subscribe to",
        )?;
        if self.subscriptions.iter().flatten().count() >= MAX_SUBSCRIPTIONS {
            return Err(Error::LimitExceeded);
        }
        let queue = Some(self.bus.subscribe(filter));
        let index = match self.subscriptions.iter().position(Option::is_none) {
            Some(free) => {
                self.subscriptions[free] = queue;
                free
            }
            None => {
                self.subscriptions.push(queue);
                self.subscriptions.len() - 1
            }
        };
        Ok(index as u32 + 1)
    }

    fn unsubscribe(&mut self, handle: u32) -> wasmtime::Result<()> {
        self.queue(handle)?;
        self.subscriptions[handle as usize - 1] = None;
        Ok(())
    }
}

/// `wedge:edge/types.error`.
enum Error {
    PermissionDenied(String),
    InvalidTopic(String),
    PayloadTooLarge(u64),
    LimitExceeded,
}

/// Checks `topic` (a filter if `wildcards`), then that one of `grants` `allows` it
/// (matches a topic, covers a filter); `what` the app wanted to do, for the error.
fn allowed(
    topic: &str,
    wildcards: bool,
    grants: &[String],
    allows: fn(&str, &str) -> bool,
    what: &str,
) -> Result<(), Error> {
    wedge_topic::check(topic, wildcards)
        .map_err(|why| Error::InvalidTopic(format!("`{topic}`: {why}")))?;
    if grants.iter().any(|grant| allows(grant, topic)) {
        Ok(())
    } else {
        Err(Error::PermissionDenied(format!(
            "no grant lets this app {what} `{topic}`"
        )))
    }
}

/// A trap of the calling app (a broken canonical ABI contract, as the component model
/// traps on one).
fn trap(why: String) -> wasmtime::Error {
    wasmtime::Error::msg(why)
}

/// Runs `f` on the calling app's memory: out of its bounds, or without one, the call
/// traps.
fn on_memory<R>(
    caller: &mut Caller<'_, AppState>,
    f: impl FnOnce(&mut Guest<'_>) -> Result<R, OutOfBounds>,
) -> wasmtime::Result<R> {
    guest::with(caller, |guest, _| f(guest))
        .ok_or_else(|| trap("the app exports no memory".into()))?
        .map_err(|e| trap(e.to_string()))
}

/// `len` bytes of the app's memory at `ptr`.
fn read(caller: &mut Caller<'_, AppState>, ptr: u32, len: u32) -> wasmtime::Result<Vec<u8>> {
    on_memory(caller, |guest| {
        guest
            .bytes(ptr.into(), len.into())
            .map(|bytes| bytes.to_vec())
    })
}

/// A string the app passes: UTF-8, or the call traps.
fn read_string(caller: &mut Caller<'_, AppState>, ptr: u32, len: u32) -> wasmtime::Result<String> {
    String::from_utf8(read(caller, ptr, len)?)
        .map_err(|_| trap("a string that is not UTF-8".into()))
}

/// Writes `bytes` into the app's memory at `ptr`.
fn write(caller: &mut Caller<'_, AppState>, ptr: u32, bytes: &[u8]) -> wasmtime::Result<()> {
    on_memory(caller, |guest| guest.put(ptr.into(), bytes))
}

/// Copies `bytes` into memory the app allocates with its `cabi_realloc` (as the
/// component model does to return a string or list); returns where.
async fn give(
    caller: &mut Caller<'_, AppState>,
    align: u32,
    bytes: &[u8],
) -> wasmtime::Result<u32> {
    let realloc = caller
        .get_export("cabi_realloc")
        .and_then(Extern::into_func);
    let realloc = realloc.ok_or_else(|| trap("the app exports no `cabi_realloc`".into()))?;
    let realloc = realloc.typed::<(u32, u32, u32, u32), u32>(&*caller)?;
    let ptr = realloc
        .call_async(&mut *caller, (0, 0, align, bytes.len() as u32))
        .await?;
    if !ptr.is_multiple_of(align) {
        return Err(trap(format!(
            "`cabi_realloc` gave a misaligned pointer {ptr}"
        )));
    }
    write(caller, ptr, bytes)?;
    Ok(ptr)
}

/// Gives a string or byte list to the app: its pointer and length, as the canonical ABI
/// lays them out.
async fn give_list(caller: &mut Caller<'_, AppState>, bytes: &[u8]) -> wasmtime::Result<[u8; 8]> {
    let ptr = give(caller, 1, bytes).await?;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&ptr.to_le_bytes());
    out[4..].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
    Ok(out)
}

/// Gives a `message` record (topic, payload: 16 bytes) to the app.
async fn give_message(
    caller: &mut Caller<'_, AppState>,
    message: &Message,
) -> wasmtime::Result<[u8; 16]> {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&give_list(caller, message.topic.as_bytes()).await?);
    out[8..].copy_from_slice(&give_list(caller, &message.payload).await?);
    Ok(out)
}

/// Writes a `result<T, error>` at `ret`: `ok` (T's bytes, from offset 8) or the error.
/// The error variant holds a `u64`, so the result's payload is 8-aligned.
async fn put_result(
    caller: &mut Caller<'_, AppState>,
    ret: u32,
    result: Result<impl AsRef<[u8]>, Error>,
) -> wasmtime::Result<()> {
    let mut area = Vec::from([0u8; 8]);
    match result {
        Ok(ok) => area.extend_from_slice(ok.as_ref()),
        Err(error) => {
            area[0] = 1;
            let mut err = [0u8; 16];
            let text = match error {
                Error::PermissionDenied(text) => text,
                Error::InvalidTopic(text) => {
                    err[0] = 1;
                    text
                }
                Error::PayloadTooLarge(limit) => {
                    err[0] = 2;
                    err[8..].copy_from_slice(&limit.to_le_bytes());
                    String::new()
                }
                Error::LimitExceeded => {
                    err[0] = 3;
                    String::new()
                }
            };
            if err[0] <= 1 {
                err[8..].copy_from_slice(&give_list(caller, text.as_bytes()).await?);
            }
            area.extend_from_slice(&err);
        }
    }
    write(caller, ret, &area)
}

/// Defines the messaging imports: `publish`, `subscribe`, the subscription's methods and
/// its drop.
pub fn add_to_linker(linker: &mut Linker<AppState>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        MODULE,
        "publish",
        |mut c: Caller<'_, AppState>, (topic, topic_len, payload, payload_len, _qos, ret): (u32, u32, u32, u32, u32, u32)| {
            Box::new(async move {
                let topic = read_string(&mut c, topic, topic_len)?;
                let payload = read(&mut c, payload, payload_len)?;
                let done = c.data().messaging.publish(topic, payload);
                put_result(&mut c, ret, done.map(|()| [0u8; 0])).await
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "subscribe",
        |mut c: Caller<'_, AppState>, (filter, filter_len, ret): (u32, u32, u32)| {
            Box::new(async move {
                let filter = read_string(&mut c, filter, filter_len)?;
                let handle = c.data_mut().messaging.subscribe(filter);
                put_result(&mut c, ret, handle.map(u32::to_le_bytes)).await
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "[method]subscription.filter",
        |mut c: Caller<'_, AppState>, (handle, ret): (u32, u32)| {
            Box::new(async move {
                let queue = c.data().messaging.queue(handle)?;
                let filter = give_list(&mut c, queue.filter.as_bytes()).await?;
                write(&mut c, ret, &filter)
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "[method]subscription.receive",
        |mut c: Caller<'_, AppState>, (handle, timeout_ms, ret): (u32, u32, u32)| {
            Box::new(async move {
                let next = next(&mut c, handle, timeout_ms).await?;
                let mut option = [0u8; 20];
                if let Some(message) = next {
                    option[0] = 1;
                    option[4..].copy_from_slice(&give_message(&mut c, &message).await?);
                }
                put_result(&mut c, ret, Ok(option)).await
            })
        },
    )?;
    linker.func_wrap_async(
        MODULE,
        "[method]subscription.receive-many",
        |mut c: Caller<'_, AppState>, (handle, max, timeout_ms, ret): (u32, u32, u32, u32)| {
            Box::new(async move {
                let mut messages = Vec::new();
                if max > 0
                    && let Some(first) = next(&mut c, handle, timeout_ms).await?
                {
                    let queue = c.data().messaging.queue(handle)?;
                    messages.push(first);
                    while messages.len() < max as usize {
                        let Some(message) = queue.pop() else { break };
                        messages.push(message);
                    }
                }
                let mut records = Vec::with_capacity(messages.len() * 16);
                for message in &messages {
                    records.extend_from_slice(&give_message(&mut c, message).await?);
                }
                let list = give(&mut c, 4, &records).await?;
                let mut ok = [0u8; 8];
                ok[..4].copy_from_slice(&list.to_le_bytes());
                ok[4..].copy_from_slice(&(messages.len() as u32).to_le_bytes());
                put_result(&mut c, ret, Ok(ok)).await
            })
        },
    )?;
    linker.func_wrap(
        MODULE,
        "[method]subscription.dropped",
        |c: Caller<'_, AppState>, handle: u32| -> wasmtime::Result<u64> {
            Ok(c.data().messaging.queue(handle)?.held.lock().dropped)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "[resource-drop]subscription",
        |mut c: Caller<'_, AppState>, handle: u32| c.data_mut().messaging.unsubscribe(handle),
    )?;
    Ok(())
}

/// The next message of subscription `handle`: waits up to `timeout_ms` for one.
async fn next(
    caller: &mut Caller<'_, AppState>,
    handle: u32,
    timeout_ms: u32,
) -> wasmtime::Result<Option<Message>> {
    let state = caller.data();
    let queue = state.messaging.queue(handle)?;
    let until = state
        .board
        .monotonic_ns()
        .saturating_add(u64::from(timeout_ms) * 1_000_000);
    Ok(wait::until(state.board, until, &state.waiting, || queue.pop()).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn app(bus: &Arc<Bus>, publish: &[&str], subscribe: &[&str]) -> Messaging {
        let grants = Grants {
            publish: publish.iter().map(ToString::to_string).collect(),
            subscribe: subscribe.iter().map(ToString::to_string).collect(),
        };
        Messaging::new(bus.clone(), grants)
    }

    fn publish(app: &Messaging, topic: &str, payload: &[u8]) -> Result<(), Error> {
        app.publish(topic.into(), payload.to_vec())
    }

    fn topics(app: &Messaging, handle: u32) -> Vec<String> {
        let queue = app.queue(handle).unwrap();
        core::iter::from_fn(|| queue.pop())
            .map(|m| m.topic.to_string())
            .collect()
    }

    #[test]
    fn messages_reach_the_matching_subscriptions_of_every_app() {
        let bus = Arc::new(Bus::default());
        let sender = app(&bus, &["sensors/#"], &[]);
        let mut a = app(&bus, &[], &["sensors/#"]);
        let mut b = app(&bus, &[], &["sensors/+/temp"]);
        let all = a.subscribe("sensors/#".into()).ok().unwrap();
        let temp = b.subscribe("sensors/+/temp".into()).ok().unwrap();
        for topic in ["sensors/kitchen/temp", "sensors/kitchen/hum"] {
            assert!(publish(&sender, topic, b"21").is_ok());
        }
        assert_eq!(
            topics(&a, all),
            ["sensors/kitchen/temp", "sensors/kitchen/hum"]
        );
        assert_eq!(topics(&b, temp), ["sensors/kitchen/temp"]);
        // An app that ended took its subscriptions with it.
        drop(b);
        assert!(publish(&sender, "sensors/x/temp", b"1").is_ok());
        assert_eq!(bus.queues.lock().len(), 1);
    }

    #[test]
    fn a_full_queue_loses_its_oldest_message_and_counts_it() {
        let bus = Arc::new(Bus::default());
        let mut app = app(&bus, &["t/#"], &["t/#"]);
        let handle = app.subscribe("t/#".into()).ok().unwrap();
        for i in 0..QUEUE_DEPTH + 3 {
            assert!(publish(&app, &format!("t/{i}"), b"").is_ok());
        }
        let queue = app.queue(handle).unwrap();
        assert_eq!(queue.held.lock().dropped, 3);
        let kept = topics(&app, handle);
        assert_eq!(kept.len(), QUEUE_DEPTH);
        assert_eq!(kept[0], "t/3");
    }

    #[test]
    fn grants_the_payload_limit_and_the_subscription_limit_hold() {
        let bus = Arc::new(Bus::default());
        let mut app = app(&bus, &["out/+"], &["in/#"]);
        assert!(matches!(
            publish(&app, "in/x", b""),
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            publish(&app, "out/a/b", b""),
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            publish(&app, "out/+", b""),
            Err(Error::InvalidTopic(_))
        ));
        assert!(matches!(
            app.subscribe("#".into()),
            Err(Error::PermissionDenied(_))
        ));
        assert!(matches!(
            app.subscribe("in/#/x".into()),
            Err(Error::InvalidTopic(_))
        ));
        let big = vec![0u8; MAX_PAYLOAD + 1];
        assert!(matches!(
            publish(&app, "out/a", &big),
            Err(Error::PayloadTooLarge(_))
        ));
        assert!(publish(&app, "out/a", &big[1..]).is_ok());
        let handles: Vec<u32> = (0..MAX_SUBSCRIPTIONS)
            .map(|_| app.subscribe("in/#".into()).ok().unwrap())
            .collect();
        assert!(matches!(
            app.subscribe("in/#".into()),
            Err(Error::LimitExceeded)
        ));
        // Dropping one frees a place, and its handle is unknown from then on.
        app.unsubscribe(handles[2]).unwrap();
        assert!(app.queue(handles[2]).is_err());
        assert!(app.unsubscribe(handles[2]).is_err());
        assert!(app.queue(0).is_err() && app.queue(99).is_err());
        assert_eq!(app.subscribe("in/#".into()).ok(), Some(handles[2]));
    }
}
