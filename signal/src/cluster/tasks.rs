//! The three tasks that keep a relay in the cluster: the heartbeat (presence, and the
//! relays alive), the subscription (messages for this relay) and the publisher (messages
//! for the others, in order).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fred::clients::SubscriberClient;
use fred::prelude::{ClientLike, EventInterface, PubsubInterface, Value};
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info, warn};

use super::{
    HEARTBEAT, Inbound, Outgoing, PRESENCE_TTL, Redis, RelayId, RelayMessage, Unavailable, channel, key,
};
use crate::hub::Command;
use crate::server::Shared;

/// Renews this relay's presence every [`HEARTBEAT`] and tells the hub who is alive, or
/// that Redis is gone. Says in the log when Redis goes away and when it is back.
pub(super) async fn heartbeat(
    redis: Redis,
    me: RelayId,
    url: String,
    hub: mpsc::Sender<Command>,
    shared: Arc<Shared>,
) {
    let start = tokio::time::Instant::now() + HEARTBEAT;
    let mut tick = tokio::time::interval_at(start, HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tick.tick().await;
        let was_up = redis.up.load(Ordering::Relaxed);
        let asked = tokio::time::Instant::now();
        let inbound = match beat(&redis, &me, &shared).await {
            Ok((relays, fresh)) => {
                if !was_up {
                    info!(redis = %url, relays = relays.len(), "Redis answers; bringing this relay's rooms in step with the cluster");
                    redis.up.store(true, Ordering::Relaxed);
                }
                Inbound::Live { relays, fresh, asked }
            }
            Err(e) => {
                let report = was_up || first;
                if report {
                    warn!(redis = %url, "Redis does not answer ({e}); serving rooms whose members are all on this relay, and trying again");
                    redis.up.store(false, Ordering::Relaxed);
                }
                shared.metrics.set_cluster(false, 0);
                first = false;
                if !report {
                    continue;
                }
                Inbound::Lost
            }
        };
        first = false;
        if hub.send(Command::Cluster(inbound)).await.is_err() {
            return;
        }
    }
}

/// Renews this relay's presence once; returns the relays alive and whether this one was
/// new among them.
pub(super) async fn beat(
    redis: &Redis,
    me: &str,
    shared: &Shared,
) -> Result<(HashSet<RelayId>, bool), Unavailable> {
    let args = vec![me.to_owned(), PRESENCE_TTL.as_millis().to_string(), super::PREFIX.to_owned()];
    let Value::Array(items) = redis.run(&redis.scripts.heartbeat, vec![key("relays")], args).await? else {
        return Err(Unavailable("the heartbeat script answered something unexpected".to_owned()));
    };
    let mut items = items.into_iter().filter_map(|v| v.as_string());
    let fresh = items.next().as_deref() == Some("1");
    let relays: HashSet<RelayId> = items.collect();
    shared.metrics.set_cluster(true, relays.len());
    Ok((relays, fresh))
}

/// Hands what arrives on this relay's channel to the hub, and subscribes again after
/// every reconnection. `pending` is the channel when the first subscription failed.
pub(super) async fn subscribe(
    subscriber: SubscriberClient,
    pending: Option<String>,
    hub: mpsc::Sender<Command>,
    shared: Arc<Shared>,
) {
    let mut messages = subscriber.message_rx();
    let _resubscriber = subscriber.manage_subscriptions();
    // Until a first subscription succeeds there is nothing for manage_subscriptions to renew.
    let subscribing = pending.map(|channel| {
        let subscriber = subscriber.clone();
        tokio::spawn(async move {
            while let Err(e) = subscriber.subscribe(channel.clone()).await {
                debug!("could not subscribe to {channel} yet: {e}");
                tokio::time::sleep(HEARTBEAT).await;
            }
        })
    });
    loop {
        match messages.recv().await {
            Ok(message) => {
                shared.metrics.cluster_received();
                let Some(text) = message.value.as_str() else { continue };
                let inbound = match super::wire::parse_signal(&text) {
                    Some((to, frame)) => Inbound::Signal { to, frame: frame.to_owned().into() },
                    None => match serde_json::from_str::<RelayMessage>(&text) {
                        Ok(message) => Inbound::Message(message),
                        Err(e) => {
                            warn!("ignoring a message from another relay that is not understood: {e}");
                            continue;
                        }
                    },
                };
                if hub.send(Command::Cluster(inbound)).await.is_err() {
                    break;
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                warn!(missed, "fell behind the messages from other relays; some were lost");
                shared.metrics.cluster_dropped(missed);
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
    if let Some(task) = subscribing {
        task.abort();
    }
}

/// Sends what the hub queued, in order: publications go out in pipelines of whatever is
/// waiting, a leave runs its script first and then tells the relays it names.
pub(super) async fn publish(
    redis: Redis,
    me: RelayId,
    mut queue: mpsc::Receiver<Outgoing>,
    shared: Arc<Shared>,
) {
    let mut batch = Vec::with_capacity(256);
    while queue.recv_many(&mut batch, 256).await > 0 {
        if !redis.client.is_connected() {
            shared.metrics.cluster_dropped(batch.len() as u64);
            batch.clear();
            continue;
        }
        let mut pipeline = redis.client.pipeline();
        let mut queued = 0u64;
        for op in batch.drain(..) {
            match op {
                Outgoing::Publish { relay, message } => {
                    let _: Result<(), _> = pipeline.publish(channel(&relay), message.to_json()).await;
                    queued += 1;
                }
                Outgoing::Signal { relay, to, frame } => {
                    let payload = super::wire::signal_payload(&to, &frame);
                    let _: Result<(), _> = pipeline.publish(channel(&relay), payload).await;
                    queued += 1;
                }
                Outgoing::Leave { room, id, conn } => {
                    // The leave's answer says whom to tell, so what is queued goes first.
                    if queued > 0 {
                        flush(&pipeline, queued, &shared).await;
                        pipeline = redis.client.pipeline();
                        queued = 0;
                    }
                    let text = super::room_text(&room);
                    let keys = vec![super::room_key(&room), key("rooms"), super::relay_rooms_key(&me)];
                    let args = vec![id.0.clone(), conn, text.clone(), me.clone()];
                    match redis.run(&redis.scripts.leave, keys, args).await {
                        Ok(relays) => {
                            for relay in super::array(relays).iter().filter_map(Value::as_string) {
                                let left = RelayMessage::Left {
                                    from: me.clone(),
                                    room: text.clone(),
                                    id: id.clone(),
                                };
                                let _: Result<(), _> =
                                    pipeline.publish(channel(&relay), left.to_json()).await;
                                queued += 1;
                            }
                        }
                        Err(e) => debug!(peer = %id, "could not record a departure: {e}"),
                    }
                }
            }
        }
        if queued > 0 {
            flush(&pipeline, queued, &shared).await;
        }
    }
}

async fn flush(pipeline: &fred::clients::Pipeline<fred::prelude::Client>, queued: u64, shared: &Shared) {
    match pipeline.all::<Value>().await {
        Ok(_) => shared.metrics.cluster_published(queued),
        Err(e) => {
            debug!("could not publish to other relays: {e}");
            shared.metrics.cluster_dropped(queued);
        }
    }
}
