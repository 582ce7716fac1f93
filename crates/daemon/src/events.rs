//! Container events, fanned out to every `GET /v2/events` subscriber.

use crate::types::Event;
use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it misses some. Allocated up front
/// (about 150 bytes each): 512 is a burst of 170 containers removed at once, and keeps
/// an idle daemon small on a device (docs/edge.md).
const EVENT_BUFFER: usize = 512;

/// The event feed. A subscriber that falls more than its buffer behind misses events
/// rather than slowing the daemon.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::channel(EVENT_BUFFER).0,
        }
    }
}

impl EventBus {
    /// Publishes an event about container `id` / `name`.
    pub fn emit(
        &self,
        action: &str,
        id: &str,
        name: &str,
        exit_code: Option<i32>,
        reason: Option<String>,
    ) {
        let _ = self.tx.send(Event {
            time: crate::now(),
            action: action.into(),
            id: id.into(),
            name: name.into(),
            exit_code,
            reason,
        });
    }

    /// A new subscription, starting with the next event.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
