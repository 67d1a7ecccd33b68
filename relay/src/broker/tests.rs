//! The paper engine's rules, tick by tick.

use hamster_shared::broker::{
    OrderClass, OrderRejectCode, OrderRequest, OrderStatus, OrderType, ReplaceRequest, Side, StopLoss, TakeProfit,
    TimeInForce,
};

use super::engine::{Engine, Mark, PaperConfig};
use super::AccountId;

const T0: i64 = 1_700_000_000_000;

fn engine() -> Engine {
    Engine::new(PaperConfig::default())
}

fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("o{n}")
    }
}

fn req(side: Side, order_type: OrderType, qty: f64) -> OrderRequest {
    OrderRequest {
        symbol: "AAPL".into(),
        qty: Some(qty),
        notional: None,
        side,
        order_type,
        time_in_force: TimeInForce::Gtc,
        limit_price: None,
        stop_price: None,
        trail_price: None,
        trail_percent: None,
        order_class: OrderClass::Simple,
        take_profit: None,
        stop_loss: None,
        client_order_id: None,
    }
}

fn tick(e: &mut Engine, price: f64, n: i64) {
    e.on_quote("AAPL", Mark { price, bid: None, ask: None, ts: T0 + n });
}

fn me() -> AccountId {
    AccountId::local()
}

fn status(e: &Engine, id: &str) -> OrderStatus {
    e.books[&me()].orders[id].status
}

/// Buys `qty` at `price` with a market order on a fresh engine.
fn holding(qty: f64, price: f64, id: &mut dyn FnMut() -> String) -> Engine {
    let mut e = engine();
    tick(&mut e, price, 0);
    let (o, _) = e.place(&me(), req(Side::Buy, OrderType::Market, qty), id, T0).unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    e
}

#[test]
fn a_market_buy_fills_at_the_ask_and_moves_cash_and_position() {
    let mut e = engine();
    e.on_quote("AAPL", Mark { price: 100.0, bid: Some(99.9), ask: Some(100.1), ts: T0 });
    let (o, delta) = e.place(&me(), req(Side::Buy, OrderType::Market, 10.0), &mut ids(), T0).unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    assert_eq!(o.filled_avg_price, Some(100.1));
    assert_eq!(delta.fills.len(), 1);
    let account = e.account(&me());
    assert!((account.cash - (100_000.0 - 1001.0)).abs() < 1e-9);
    let p = &e.positions(&me())[0];
    assert_eq!((p.qty, p.avg_entry_price), (10.0, 100.1));
    assert!((p.unrealized_pl - (10.0 * (100.0 - 100.1))).abs() < 1e-9);
}

#[test]
fn slippage_and_commission_are_charged() {
    let mut e = Engine::new(PaperConfig { starting_cash: 10_000.0, slippage_bps: 10.0, commission: 1.0 });
    tick(&mut e, 100.0, 0);
    let (o, _) = e.place(&me(), req(Side::Buy, OrderType::Market, 10.0), &mut ids(), T0).unwrap();
    assert!((o.filled_avg_price.unwrap() - 100.1).abs() < 1e-9);
    assert!((e.account(&me()).cash - (10_000.0 - 1001.0 - 1.0)).abs() < 1e-9);
}

#[test]
fn a_trailing_stop_follows_the_peak_and_fills_on_the_first_tick_down_by_the_trail() {
    let mut id = ids();
    let mut e = holding(5.0, 100.0, &mut id);
    let mut r = req(Side::Sell, OrderType::TrailingStop, 5.0);
    r.trail_price = Some(2.0);
    let (o, _) = e.place(&me(), r, &mut id, T0).unwrap();
    assert_eq!(o.stop_price, Some(98.0));
    for (n, p) in [101.0, 104.0, 103.0, 106.0, 104.5].into_iter().enumerate() {
        tick(&mut e, p, n as i64 + 1);
        assert_eq!(status(&e, &o.id), OrderStatus::Accepted, "at {p}");
    }
    let working = &e.books[&me()].orders[&o.id];
    assert_eq!((working.hwm, working.stop_price), (Some(106.0), Some(104.0)));
    tick(&mut e, 104.0, 10);
    let filled = &e.books[&me()].orders[&o.id];
    assert_eq!(filled.status, OrderStatus::Filled);
    assert_eq!(filled.filled_avg_price, Some(104.0));
    assert!(e.positions(&me()).is_empty());
    assert!((e.account(&me()).realized_pl - 20.0).abs() < 1e-9);
}

#[test]
fn a_percent_trailing_stop_tracks_the_high_water_mark() {
    let mut id = ids();
    let mut e = holding(1.0, 200.0, &mut id);
    let mut r = req(Side::Sell, OrderType::TrailingStop, 1.0);
    r.trail_percent = Some(5.0);
    let (o, _) = e.place(&me(), r, &mut id, T0).unwrap();
    tick(&mut e, 220.0, 1);
    assert_eq!(e.books[&me()].orders[&o.id].stop_price, Some(209.0));
    tick(&mut e, 209.5, 2);
    assert_eq!(status(&e, &o.id), OrderStatus::Accepted);
    tick(&mut e, 208.0, 3);
    assert_eq!(status(&e, &o.id), OrderStatus::Filled);
}

#[test]
fn oco_fills_one_leg_and_cancels_the_other() {
    let mut id = ids();
    let mut e = holding(3.0, 100.0, &mut id);
    let mut r = req(Side::Sell, OrderType::Limit, 3.0);
    r.order_class = OrderClass::Oco;
    r.take_profit = Some(TakeProfit { limit_price: 110.0 });
    r.stop_loss = Some(StopLoss { stop_price: 95.0, limit_price: None });
    let (tp, delta) = e.place(&me(), r, &mut id, T0).unwrap();
    assert_eq!(delta.orders.len(), 2);
    let sl = delta.orders[1].id.clone();
    tick(&mut e, 105.0, 1);
    assert_eq!((status(&e, &tp.id), status(&e, &sl)), (OrderStatus::Accepted, OrderStatus::Accepted));
    tick(&mut e, 94.0, 2);
    assert_eq!((status(&e, &tp.id), status(&e, &sl)), (OrderStatus::Canceled, OrderStatus::Filled));
    assert!(e.positions(&me()).is_empty());
}

#[test]
fn bracket_exits_wait_for_the_entry_then_one_cancels_the_other() {
    let mut e = engine();
    let mut id = ids();
    tick(&mut e, 100.0, 0);
    let mut r = req(Side::Buy, OrderType::Limit, 2.0);
    r.limit_price = Some(99.0);
    r.order_class = OrderClass::Bracket;
    r.take_profit = Some(TakeProfit { limit_price: 105.0 });
    r.stop_loss = Some(StopLoss { stop_price: 90.0, limit_price: None });
    let (entry, delta) = e.place(&me(), r, &mut id, T0).unwrap();
    let (tp, sl) = (delta.orders[1].id.clone(), delta.orders[2].id.clone());
    assert_eq!((status(&e, &tp), status(&e, &sl)), (OrderStatus::Held, OrderStatus::Held));
    // The take-profit's price is reached before the entry fills: nothing happens to the held exits.
    tick(&mut e, 106.0, 1);
    assert_eq!(status(&e, &entry.id), OrderStatus::Accepted);
    assert_eq!((status(&e, &tp), status(&e, &sl)), (OrderStatus::Held, OrderStatus::Held));
    tick(&mut e, 98.5, 2);
    assert_eq!(status(&e, &entry.id), OrderStatus::Filled);
    assert_eq!((status(&e, &tp), status(&e, &sl)), (OrderStatus::Accepted, OrderStatus::Accepted));
    tick(&mut e, 105.5, 3);
    assert_eq!((status(&e, &tp), status(&e, &sl)), (OrderStatus::Filled, OrderStatus::Canceled));
    assert!(e.positions(&me()).is_empty());
}

#[test]
fn cancelling_a_bracket_entry_cancels_its_held_exits() {
    let mut e = engine();
    let mut id = ids();
    let mut r = req(Side::Buy, OrderType::Limit, 1.0);
    r.limit_price = Some(50.0);
    r.order_class = OrderClass::Bracket;
    r.take_profit = Some(TakeProfit { limit_price: 60.0 });
    r.stop_loss = Some(StopLoss { stop_price: 45.0, limit_price: Some(44.0) });
    let (entry, delta) = e.place(&me(), r, &mut id, T0).unwrap();
    e.cancel(&me(), &entry.id, T0 + 1).unwrap();
    for o in &delta.orders {
        assert_eq!(status(&e, &o.id), OrderStatus::Canceled);
    }
    let again = e.cancel(&me(), &entry.id, T0 + 2).unwrap_err();
    assert_eq!(again.code, OrderRejectCode::NotCancelable);
}

#[test]
fn insufficient_buying_power_is_rejected_counting_open_buys() {
    let mut e = engine();
    tick(&mut e, 1000.0, 0);
    let err = e.place(&me(), req(Side::Buy, OrderType::Market, 101.0), &mut ids(), T0).unwrap_err();
    assert_eq!(err.code, OrderRejectCode::InsufficientBuyingPower);
    let mut r = req(Side::Buy, OrderType::Limit, 60.0);
    r.limit_price = Some(900.0);
    e.place(&me(), r, &mut ids(), T0).unwrap();
    // 54,000 is promised to the open limit order; 50 more shares at 1,000 do not fit in what is left.
    let err = e.place(&me(), req(Side::Buy, OrderType::Market, 50.0), &mut ids(), T0).unwrap_err();
    assert_eq!(err.code, OrderRejectCode::InsufficientBuyingPower);
    assert_eq!(e.account(&me()).cash, 100_000.0);
}

#[test]
fn bad_orders_get_typed_rejections() {
    let mut e = engine();
    let err = |e: &mut Engine, r| e.place(&me(), r, &mut ids(), T0).unwrap_err().code;
    assert_eq!(err(&mut e, req(Side::Buy, OrderType::Market, 0.0)), OrderRejectCode::InvalidQty);
    assert_eq!(err(&mut e, req(Side::Buy, OrderType::Market, -1.0)), OrderRejectCode::InvalidQty);
    assert_eq!(err(&mut e, req(Side::Buy, OrderType::Market, f64::NAN)), OrderRejectCode::InvalidQty);
    assert_eq!(err(&mut e, req(Side::Buy, OrderType::Limit, 1.0)), OrderRejectCode::LimitPriceMissing);
    assert_eq!(err(&mut e, req(Side::Buy, OrderType::Stop, 1.0)), OrderRejectCode::StopPriceMissing);
    assert_eq!(err(&mut e, req(Side::Sell, OrderType::TrailingStop, 1.0)), OrderRejectCode::TrailMissing);
    assert_eq!(err(&mut e, req(Side::Sell, OrderType::Market, 1.0)), OrderRejectCode::InsufficientQty);
    let mut r = req(Side::Buy, OrderType::Market, 1.0);
    r.symbol = "not a symbol!".into();
    assert_eq!(err(&mut e, r), OrderRejectCode::UnknownSymbol);
}

#[test]
fn client_order_id_is_idempotent() {
    let mut e = engine();
    let mut id = ids();
    let mut r = req(Side::Buy, OrderType::Limit, 1.0);
    r.limit_price = Some(10.0);
    r.client_order_id = Some("mine-1".into());
    let (a, _) = e.place(&me(), r.clone(), &mut id, T0).unwrap();
    let (b, delta) = e.place(&me(), r, &mut id, T0 + 5).unwrap();
    assert_eq!(a, b);
    assert!(delta.is_empty());
    assert_eq!(e.orders(&me(), None).len(), 1);
}

#[test]
fn stop_limit_triggers_then_waits_for_its_limit_and_ioc_cancels_what_cannot_fill() {
    let mut id = ids();
    let mut e = holding(1.0, 100.0, &mut id);
    let mut r = req(Side::Sell, OrderType::StopLimit, 1.0);
    r.stop_price = Some(95.0);
    r.limit_price = Some(94.0);
    let (o, _) = e.place(&me(), r, &mut id, T0).unwrap();
    tick(&mut e, 93.0, 1);
    assert!(e.books[&me()].orders[&o.id].triggered);
    assert_eq!(status(&e, &o.id), OrderStatus::Accepted);
    tick(&mut e, 94.5, 2);
    assert_eq!(status(&e, &o.id), OrderStatus::Filled);

    let mut r = req(Side::Buy, OrderType::Limit, 1.0);
    r.limit_price = Some(90.0);
    r.time_in_force = TimeInForce::Ioc;
    let (o, _) = e.place(&me(), r, &mut id, T0).unwrap();
    assert_eq!(o.status, OrderStatus::Canceled);
}

#[test]
fn day_orders_expire_on_the_next_day_and_replace_keeps_the_order_working() {
    let mut e = engine();
    let mut id = ids();
    let mut r = req(Side::Buy, OrderType::Limit, 1.0);
    r.limit_price = Some(10.0);
    r.time_in_force = TimeInForce::Day;
    let (day, _) = e.place(&me(), r.clone(), &mut id, T0).unwrap();
    r.time_in_force = TimeInForce::Gtc;
    let (gtc, _) = e.place(&me(), r, &mut id, T0).unwrap();
    let (new, _) = e
        .replace(&me(), &gtc.id, ReplaceRequest { limit_price: Some(11.0), ..Default::default() }, &mut id, T0)
        .unwrap();
    assert_eq!(status(&e, &gtc.id), OrderStatus::Replaced);
    assert_eq!(new.limit_price, Some(11.0));
    tick(&mut e, 20.0, 86_400_000);
    assert_eq!(status(&e, &day.id), OrderStatus::Expired);
    assert_eq!(status(&e, &new.id), OrderStatus::Accepted);
    tick(&mut e, 10.5, 86_400_001);
    assert_eq!(status(&e, &new.id), OrderStatus::Filled);
}

#[test]
fn accounts_are_separate() {
    let mut e = engine();
    tick(&mut e, 100.0, 0);
    e.place(&me(), req(Side::Buy, OrderType::Market, 1.0), &mut ids(), T0).unwrap();
    let other = AccountId("alice".into());
    assert!(e.orders(&other, None).is_empty());
    assert!(e.positions(&other).is_empty());
    assert_eq!(e.account(&other).cash, 100_000.0);
}

#[test]
fn day_pl_counts_from_the_fill_today_and_from_the_first_price_of_the_next_day() {
    let mut id = ids();
    let mut e = holding(10.0, 100.0, &mut id);
    tick(&mut e, 103.0, 1);
    // Bought today at 100: the day's P&L is the whole move.
    assert!((e.positions(&me())[0].day_pl - 30.0).abs() < 1e-9);
    assert!((e.account(&me()).day_pl - 30.0).abs() < 1e-9);
    // The next UTC day starts at its first price (105); a later 104 is a loss of 1 a share that day.
    let next_day = 86_400_000 - T0.rem_euclid(86_400_000);
    tick(&mut e, 105.0, next_day);
    tick(&mut e, 104.0, next_day + 1);
    let p = &e.positions(&me())[0];
    assert!((p.day_pl + 10.0).abs() < 1e-9, "day_pl {}", p.day_pl);
    assert!((p.unrealized_pl - 40.0).abs() < 1e-9);
    // Selling half realises 20 against cost but only -5 against the day's start; the day P&L stays -10.
    let (o, _) = e.place(&me(), req(Side::Sell, OrderType::Market, 5.0), &mut id, T0 + next_day + 2).unwrap();
    assert_eq!(o.status, OrderStatus::Filled);
    assert!((e.account(&me()).day_pl + 10.0).abs() < 1e-9);
}

#[test]
fn a_reset_cancels_open_orders_closes_positions_and_restores_the_starting_cash() {
    let mut id = ids();
    let mut e = holding(10.0, 100.0, &mut id);
    let mut limit = req(Side::Buy, OrderType::Limit, 1.0);
    limit.limit_price = Some(50.0);
    let (working, _) = e.place(&me(), limit, &mut id, T0).unwrap();
    assert_eq!(working.status, OrderStatus::Accepted);
    let delta = e.reset(&me(), T0 + 5);
    assert!(delta.durable);
    assert_eq!(status(&e, &working.id), OrderStatus::Canceled);
    assert!(e.positions(&me()).is_empty());
    let account = e.account(&me());
    assert_eq!((account.cash, account.equity, account.buying_power), (100_000.0, 100_000.0, 100_000.0));
    // The journal learns the position is closed (a zero quantity deletes its row).
    assert_eq!(delta.holdings.len(), 1);
    assert_eq!(delta.holdings[0].1.qty, 0.0);
}

mod gate {
    //! The wake-up band is an optimisation only: an engine that skips ticks inside it must do exactly what an
    //! engine that looks at every order on every tick does.

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    struct Spec {
        side: Side,
        kind: u8,
        offset: f64,
        day: bool,
        qty: f64,
    }

    fn spec() -> impl Strategy<Value = Spec> {
        (any::<bool>(), 0u8..5, -3.0f64..3.0, any::<bool>(), 1u8..4).prop_map(|(buy, kind, offset, day, qty)| Spec {
            side: if buy { Side::Buy } else { Side::Sell },
            kind,
            offset,
            day,
            qty: f64::from(qty),
        })
    }

    fn request(spec: &Spec, price: f64) -> OrderRequest {
        let level = (price + spec.offset).max(0.01);
        let mut r = req(spec.side, OrderType::Market, spec.qty);
        r.time_in_force = if spec.day { TimeInForce::Day } else { TimeInForce::Gtc };
        match spec.kind {
            0 => {
                r.order_type = OrderType::Limit;
                r.limit_price = Some(level);
            }
            1 => {
                r.order_type = OrderType::Stop;
                r.stop_price = Some(level);
            }
            2 => {
                r.order_type = OrderType::StopLimit;
                r.stop_price = Some(level);
                r.limit_price = Some(level + spec.offset / 2.0);
            }
            3 => {
                r.order_type = OrderType::TrailingStop;
                r.trail_price = Some(spec.offset.abs() + 0.05);
            }
            _ => {
                r.order_type = OrderType::TrailingStop;
                r.trail_percent = Some(spec.offset.abs() + 0.1);
            }
        }
        r
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        #[test]
        fn skipping_ticks_inside_the_band_changes_nothing(
            specs in prop::collection::vec(spec(), 1..12),
            steps in prop::collection::vec((-1.0f64..1.0, 0.0f64..0.3, 0i64..40_000_000), 1..80),
        ) {
            let mut gated = Engine::new(PaperConfig { starting_cash: 1e9, ..PaperConfig::default() });
            let mut ungated = Engine::new(PaperConfig { starting_cash: 1e9, ..PaperConfig::default() });
            ungated.ungated = true;
            let (mut id_a, mut id_b) = (ids(), ids());
            let mut price = 100.0;
            let mut ts = T0;
            for e in [&mut gated, &mut ungated] {
                e.on_quote("AAPL", Mark { price, bid: None, ask: None, ts });
            }
            for spec in &specs {
                let a = gated.place(&me(), request(spec, price), &mut id_a, ts).map(|(o, _)| o);
                let b = ungated.place(&me(), request(spec, price), &mut id_b, ts).map(|(o, _)| o);
                prop_assert_eq!(a, b);
            }
            for (step, spread, wait) in steps {
                price = (price + step).max(1.0);
                ts += wait;
                let mark = Mark { price, bid: Some(price - spread), ask: Some(price + spread), ts };
                let a = gated.on_quote("AAPL", mark);
                let b = ungated.on_quote("AAPL", mark);
                prop_assert_eq!(a, b, "tick {} at {}", price, ts);
            }
            prop_assert_eq!(&gated.books[&me()].orders, &ungated.books[&me()].orders);
        }
    }
}
