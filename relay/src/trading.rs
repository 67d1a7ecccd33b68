//! What the trading commands of a streaming connection mean: `place_order`, `cancel_order`, `replace_order`
//! answered with `order` or `order_rejected`, and the account stream (`subscribe_account`): `account` and
//! `positions` at once, every order status change as `order`, and `account`/`positions` again on every change
//! and, marked to market, at most once a second; `reset_account` starts the account over (answered by `account`).
//!
//! A connection acts on one account, fixed when it connects (its credential's identity). Broker calls run in
//! tasks of their own, so a slow broker never stalls the connection's reader; replies go through the client's
//! outbox like every other control message, and the account stream ends with the connection.

use std::sync::Arc;
use std::time::Duration;

use hamster_shared::broker::{OrderReject, OrderRejectCode};
use hamster_shared::{ClientMessage, RequestId, ServerMessage};
use parking_lot::Mutex;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::broker::{AccountId, Broker};
use crate::commands;
use crate::hub::{ClientId, Hub};
use crate::upstream::Upstream;

/// Marked-to-market `account`/`positions` go out at most this often.
const MARK_EVERY: Duration = Duration::from_secs(1);

/// One connection's trading state.
#[derive(Debug)]
pub(crate) struct Trading {
    broker: Arc<dyn Broker>,
    /// The connection's account, or why it has none (a JWT without `sub`).
    account: Result<AccountId, OrderReject>,
    stream: Mutex<Option<CancellationToken>>,
}

impl Drop for Trading {
    fn drop(&mut self) {
        if let Some(stop) = self.stream.lock().take() {
            stop.cancel();
        }
    }
}

impl Trading {
    pub(crate) fn new(broker: Arc<dyn Broker>, account: Result<AccountId, OrderReject>) -> Trading {
        Trading { broker, account, stream: Mutex::new(None) }
    }

    /// Handles a trading command (`None`); returns any other command back.
    pub(crate) fn handle(
        &self,
        hub: &Arc<Hub>,
        upstream: &Upstream,
        client: ClientId,
        message: ClientMessage,
    ) -> Option<ClientMessage> {
        let id = match &message {
            ClientMessage::PlaceOrder { id, .. }
            | ClientMessage::CancelOrder { id, .. }
            | ClientMessage::ReplaceOrder { id, .. }
            | ClientMessage::SubscribeAccount { id }
            | ClientMessage::UnsubscribeAccount { id }
            | ClientMessage::ResetAccount { id } => id.clone(),
            _ => return Some(message),
        };
        let account = match &self.account {
            Ok(account) => account.clone(),
            Err(reject) => {
                reply_rejected(hub, client, id, reject.clone());
                return None;
            }
        };
        let (broker, hub) = (self.broker.clone(), hub.clone());
        match message {
            ClientMessage::PlaceOrder { order, .. } => {
                // As over REST: only routable symbols, and asking for one subscribes it so its ticks arrive.
                let symbol = match commands::parse(&order.symbol) {
                    Ok(symbol) => symbol,
                    Err(r) => {
                        let reject = OrderReject { code: OrderRejectCode::UnknownSymbol, message: r.message };
                        reply_rejected(&hub, client, id, reject);
                        return None;
                    }
                };
                if let Err(e) = upstream.route(&symbol) {
                    let reject = OrderReject { code: OrderRejectCode::UnknownSymbol, message: e.message };
                    reply_rejected(&hub, client, id, reject);
                    return None;
                }
                if let Err(e) = hub.lease(std::slice::from_ref(&symbol)) {
                    let reject = OrderReject { code: OrderRejectCode::Unavailable, message: e.to_string() };
                    reply_rejected(&hub, client, id, reject);
                    return None;
                }
                tokio::spawn(async move {
                    let result = broker.place(&account, *order).await;
                    reply(&hub, client, id, result);
                });
            }
            ClientMessage::CancelOrder { order_id, .. } => {
                tokio::spawn(async move {
                    let result = broker.cancel(&account, &order_id).await;
                    reply(&hub, client, id, result);
                });
            }
            ClientMessage::ReplaceOrder { order_id, change, .. } => {
                tokio::spawn(async move {
                    let result = broker.replace(&account, &order_id, change).await;
                    reply(&hub, client, id, result);
                });
            }
            ClientMessage::SubscribeAccount { .. } => {
                let stop = CancellationToken::new();
                if let Some(old) = self.stream.lock().replace(stop.clone()) {
                    old.cancel();
                }
                tokio::spawn(account_stream(broker, account, hub, client, stop));
            }
            ClientMessage::ResetAccount { .. } => {
                tokio::spawn(async move {
                    match broker.reset(&account).await {
                        Ok(account) => hub.send(client, &ServerMessage::Account { account }),
                        Err(reject) => reply_rejected(&hub, client, id, reject),
                    }
                });
            }
            ClientMessage::UnsubscribeAccount { .. } => {
                if let Some(old) = self.stream.lock().take() {
                    old.cancel();
                }
            }
            _ => {}
        }
        None
    }
}

fn reply(
    hub: &Hub,
    client: ClientId,
    id: Option<RequestId>,
    result: Result<hamster_shared::broker::Order, OrderReject>,
) {
    match result {
        Ok(order) => hub.send(client, &ServerMessage::Order { id, order: Box::new(order) }),
        Err(reject) => reply_rejected(hub, client, id, reject),
    }
}

fn reply_rejected(hub: &Hub, client: ClientId, id: Option<RequestId>, reject: OrderReject) {
    hub.metrics().command_errors.inc();
    hub.send(client, &ServerMessage::OrderRejected { id, reject });
}

/// Streams one account to one client until `stop` fires or the client is gone.
async fn account_stream(
    broker: Arc<dyn Broker>,
    account: AccountId,
    hub: Arc<Hub>,
    client: ClientId,
    stop: CancellationToken,
) {
    let mut updates = broker.updates();
    let mut last = None;
    let mut mark = tokio::time::interval(MARK_EVERY);
    mark.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changed = tokio::select! {
            _ = stop.cancelled() => return,
            update = updates.recv() => match update {
                Ok(update) if update.account == account => {
                    for order in update.orders {
                        hub.send(client, &ServerMessage::Order { id: None, order: Box::new(order) });
                    }
                    true
                }
                Ok(_) => continue,
                // Missed updates: the snapshot below still brings the account and positions up to date.
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            },
            _ = mark.tick() => false,
        };
        if hub.queued(client).is_none() {
            return;
        }
        let snapshot = (broker.account(&account).await, broker.positions(&account).await);
        if changed || last.as_ref() != Some(&snapshot) {
            hub.send(client, &ServerMessage::Account { account: snapshot.0.clone() });
            hub.send(client, &ServerMessage::Positions { positions: snapshot.1.clone() });
            last = Some(snapshot);
        }
    }
}
