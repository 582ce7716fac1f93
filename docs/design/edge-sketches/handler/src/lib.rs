wit_bindgen::generate!({
    path: "../wit",
    world: "wedge:edge/push-handler",
    generate_all,
});

use exports::wedge::edge::handler::Guest;
use wedge::edge::messaging;
use wedge::edge::types::{Error, Message, Qos};

struct Handler;

impl Guest for Handler {
    fn handle(msg: Message) -> Result<(), Error> {
        println!("handler: got {} ({} bytes)", msg.topic, msg.payload.len());
        if msg.topic == "bad" {
            return Err(Error::Other("refused".into()));
        }
        // Reply by publishing, from inside the export.
        messaging::publish(&format!("replies/{}", msg.topic.replace('/', "_")), &msg.payload, Qos::AtMostOnce)
    }
}

export!(Handler);
