//! A push handler (`wedge:edge/handler`) for wedge's tests: the host calls `handle` for
//! each message on the topics the app may subscribe to, in a fresh instance each time.
//! It prints `handled TOPIC PAYLOAD` and publishes the payload back to `replies/TOPIC`
//! (the topic's `/` turned into `_`). The payload `refuse` makes it answer an error,
//! `trap` makes it trap, `spin` makes it loop until a limit stops it.

wit_bindgen::generate!({
    path: "../../../../../wit",
    world: "wedge:edge/push-handler",
    generate_all,
});

use exports::wedge::edge::handler::Guest;
use wedge::edge::messaging;
use wedge::edge::types::{Error, Message, Qos};

struct Handler;

impl Guest for Handler {
    fn handle(msg: Message) -> Result<(), Error> {
        let payload = String::from_utf8_lossy(&msg.payload).into_owned();
        println!("handled {} {payload}", msg.topic);
        match payload.as_str() {
            "refuse" => return Err(Error::Other("refused on purpose".into())),
            "trap" => panic!("trapping on purpose"),
            "spin" => loop {
                std::hint::black_box(());
            },
            _ => {}
        }
        let reply = format!("replies/{}", msg.topic.replace('/', "_"));
        messaging::publish(&reply, &msg.payload, Qos::AtLeastOnce)
    }
}

export!(Handler);
