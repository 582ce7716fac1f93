//! Push delivery (`wedge:edge/handler`): the host subscribes an app to the filters it is
//! granted and calls its `handle` export once per message, one message at a time in
//! arrival order, each call in a fresh instance under the app's limits (memory, fuel
//! and `--timeout` apply to one message). A failing message is logged on the app's
//! stderr and the next one still comes.

use crate::messaging::bindings::wedge::edge::types::{Error, Message};
use crate::output::SharedOutput;
use crate::providers::ProviderSetup;
use crate::run::{Prepared, classify, host_refusal};
use crate::sandbox::Sandbox;
use crate::{Control, Outcome, Policy, RuntimeError, Stdio, wasi};
use std::sync::Arc;

#[allow(missing_docs, clippy::all)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "wedge:edge/push-handler",
        imports: { default: trappable },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wedge:edge/types": crate::messaging::bindings::wedge::edge::types,
            "wedge:edge/messaging": crate::messaging::bindings::wedge::edge::messaging,
            "wasi:keyvalue/store": crate::keyvalue::bindings::wasi::keyvalue::store,
            "wasi:keyvalue/atomics": crate::keyvalue::bindings::wasi::keyvalue::atomics,
            "wasi:keyvalue/batch": crate::keyvalue::bindings::wasi::keyvalue::batch,
        },
    });
}
pub(crate) use bindings::PushHandlerPre;

/// Delivers messages to the handler until `control` asks it to stop (after the message
/// in hand: exit 0) or kills it (137).
pub(crate) async fn serve(
    prepared: &Prepared,
    pre: &PushHandlerPre<Sandbox>,
    policy: &Policy,
    stdio: Stdio,
    control: &Control,
) -> Result<Outcome, RuntimeError> {
    let filters = match &policy.messaging {
        Some(access) if !access.subscribe.is_empty() => access.subscribe.clone(),
        _ => {
            return Err(RuntimeError::Grant(
                "a push handler receives the messages its `--allow-subscribe` filters match: \
                 grant at least one"
                    .into(),
            ));
        }
    };
    let bus = &policy.messaging.as_ref().expect("checked above").bus;
    // Checked now so a bad grant fails at startup, not on the first message.
    wasi::builder(policy, Stdio::Null)?;
    let output = SharedOutput::from_stdio(stdio);
    let setup = ProviderSetup::new(policy);
    let listed: Vec<String> = filters.iter().map(|f| format!("`{f}`")).collect();
    let subscription = bus.subscribe(filters);
    control.entered();
    output
        .note(&format!("push handler subscribed to {}", listed.join(", ")))
        .await;
    loop {
        let message = tokio::select! {
            biased;
            () = control.killed() => return Ok(Outcome::Killed),
            () = control.stop_requested() => return Ok(Outcome::Exited(0)),
            message = subscription.queue().recv() => message,
        };
        control.runnable().await;
        let topic = message.topic.clone();
        let message = Message {
            topic: message.topic.to_string(),
            payload: message.payload.to_vec(),
        };
        let failure = tokio::select! {
            failure = control.timed(deliver(prepared, pre, policy, &output, &setup, control, &message)) => failure?,
            () = control.killed() => return Ok(Outcome::Killed),
        };
        if let Some(failure) = failure {
            output
                .note(&format!(
                    "handling a message on `{topic}` failed: {failure}"
                ))
                .await;
        }
    }
}

/// Handles one message in a fresh instance; what went wrong, if anything.
async fn deliver(
    prepared: &Prepared,
    pre: &PushHandlerPre<Sandbox>,
    policy: &Policy,
    output: &SharedOutput,
    setup: &Arc<ProviderSetup>,
    control: &Control,
    message: &Message,
) -> Result<Option<String>, RuntimeError> {
    let sandbox = Sandbox::component(policy, output.stdio(), Some(control), setup.clone())?;
    let mut store = prepared.store(sandbox, policy, Some(control))?;
    let run = async {
        let handler = pre
            .instantiate_async(&mut store)
            .await
            .map_err(host_refusal)?;
        handler
            .wedge_edge_handler()
            .call_handle(&mut store, message)
            .await
    };
    // The epoch deadline stops guest code; this stops a guest waiting in the host.
    let result = match policy.timeout {
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(result) => result,
            Err(_) => return Ok(Some(Outcome::TimedOut(limit).reason().unwrap_or_default())),
        },
        None => run.await,
    };
    Ok(match result {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(format!("the app answered {}", describe(&error))),
        Err(err) if err.downcast_ref::<crate::run::HostRefusal>().is_some() => {
            Some(format!("cannot instantiate the app: {err}"))
        }
        Err(err) => {
            let outcome = classify(err, policy, store.data().limiter.hit);
            Some(
                outcome.reason().unwrap_or_else(|| {
                    format!("the app exited with status {}", outcome.exit_code())
                }),
            )
        }
    })
}

/// A guest's messaging error as the log shows it.
fn describe(error: &Error) -> String {
    match error {
        Error::PermissionDenied(m) => format!("permission denied: {m}"),
        Error::InvalidTopic(m) => format!("invalid topic: {m}"),
        Error::PayloadTooLarge(max) => format!("payload too large (limit {max} bytes)"),
        Error::LimitExceeded => "limit exceeded".into(),
        Error::Other(m) => m.clone(),
    }
}
