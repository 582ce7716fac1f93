//! Benchmark handler: answers every request `200 text/plain` with `hello from wasm\n` and
//! writes nothing to stdout or stderr.
use std::io::Write as _;
use wasi::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Hello;

wasi::http::proxy::export!(Hello);

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(_request: IncomingRequest, response_out: ResponseOutparam) {
        let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())])
            .expect("valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("first call to body");
        ResponseOutparam::set(response_out, Ok(response));
        let mut out = body.write().expect("first call to write");
        if out.write_all(b"hello from wasm\n").is_err() || out.blocking_flush().is_err() {
            return; // the client went away
        }
        drop(out); // the stream must go before the body is finished
        OutgoingBody::finish(body, None).expect("finish body");
    }
}
