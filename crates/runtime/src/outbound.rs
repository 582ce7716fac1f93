//! Outbound HTTP from a guest (`wasi:http/outgoing-handler`): a request leaves only for
//! an origin the policy grants (`--allow-http`); anything else fails inside the guest
//! with `HTTP-request-denied`.

use crate::http::HttpBody;
use http_body_util::BodyExt;
use std::sync::Arc;
use wasmtime_wasi_http::{Error as BodyError, RequestOptions, WasiHttpHooks};
use wedge_manifest::{HttpOrigin, default_port};

/// The hooks `wasi:http` calls for each request a guest sends.
pub(crate) struct OutboundHooks {
    /// The origins granted with `--allow-http`.
    pub(crate) allowed: Arc<[HttpOrigin]>,
}

type IoFuture = Box<dyn Future<Output = Result<(), BodyError>> + Send>;
type SendFuture = Box<
    dyn Future<Output = wasmtime_wasi_http::Result<(http::Response<HttpBody>, IoFuture)>> + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<HttpBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        if !outbound_allowed(&self.allowed, request.uri()) {
            return Box::new(async { Err(BodyError::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        })
    }
}

/// Whether `uri` (absolute, as the outgoing handler builds it) is covered by a grant.
fn outbound_allowed(allowed: &[HttpOrigin], uri: &http::Uri) -> bool {
    let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
        return false;
    };
    let port = uri.port_u16().unwrap_or_else(|| default_port(scheme));
    allowed.iter().any(|o| o.allows(scheme, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Vec<HttpOrigin> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn outbound_needs_a_matching_origin() {
        let allowed = origins(&["http://127.0.0.1:8081", "https://*.example.com"]);
        let ok = |u: &str| outbound_allowed(&allowed, &u.parse().unwrap());
        assert!(ok("http://127.0.0.1:8081/x"));
        assert!(!ok("http://127.0.0.1:8082/x"));
        assert!(!ok("https://127.0.0.1:8081/x"));
        assert!(ok("https://api.example.com/v1"));
        assert!(!ok("http://api.example.com/v1"));
        assert!(!ok("https://example.com/"));
        assert!(!ok("/relative"));
        assert!(!outbound_allowed(
            &[],
            &"http://127.0.0.1/".parse().unwrap()
        ));
    }
}
