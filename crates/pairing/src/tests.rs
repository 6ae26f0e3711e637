use super::*;

fn gateway_id() -> PeerIdentity {
    PeerIdentity {
        name: "home-server".into(),
        public_key: b64(&[7u8; 32]),
        cert_fingerprint: None,
        capabilities: vec![],
    }
}

fn node_id() -> PeerIdentity {
    PeerIdentity {
        name: "macbook".into(),
        public_key: b64(&[9u8; 32]),
        cert_fingerprint: Some("ab".repeat(32)),
        capabilities: vec!["screen.snapshot".into(), "system.notify".into()],
    }
}

/// Runs the whole exchange; returns what each side learned of the other.
fn pair(gateway_code: &str, node_code: &str) -> Result<(PeerIdentity, PeerIdentity), PairingError> {
    let (g, start) = GatewayStart::new(gateway_code, "home-server")?;
    let (n, reply) = NodeConfirming::new(node_code, &start)?;
    assert_eq!(n.gateway_name(), "home-server");
    let (g, confirm) = g.confirm(&reply, &gateway_id())?;
    let (gw_seen_by_node, confirm_reply) = n.finish(&confirm, &node_id())?;
    let node_seen_by_gw = g.finish(&confirm_reply)?;
    Ok((gw_seen_by_node, node_seen_by_gw))
}

#[test]
fn the_right_code_pairs_and_exchanges_identities() {
    let code = new_code();
    assert_eq!(code.len(), 6);
    let (gw, node) = pair(&code, &code).unwrap();
    assert_eq!(gw, gateway_id());
    assert_eq!(node, node_id());
}

#[test]
fn a_wrong_code_fails_key_confirmation_and_reveals_nothing() {
    let (g, start) = GatewayStart::new("123456", "home-server").unwrap();
    let (n, reply) = NodeConfirming::new("654321", &start).unwrap();
    let (_, confirm) = g.confirm(&reply, &gateway_id()).unwrap();
    // The node refuses, and cannot open the gateway's identity either.
    assert_eq!(
        n.finish(&confirm, &node_id()).unwrap_err(),
        PairingError::Mismatch
    );
    // Nothing on the wire carries the code: the SPAKE2 messages are random-looking group
    // elements, and the sealed identity needs the confirmed key.
    for field in [&start.spake, &reply.spake, &confirm.mac, &confirm.sealed] {
        assert!(!field.contains("123456") && !field.contains("654321"));
    }
    assert_eq!(
        pair("111111", "222222").unwrap_err(),
        PairingError::Mismatch
    );
}

#[test]
fn a_forged_node_reply_is_rejected_by_the_gateway() {
    let code = "424242";
    let (g, start) = GatewayStart::new(code, "gw").unwrap();
    // An impostor that does not know the code answers.
    let (_, reply) = NodeConfirming::new("000000", &start).unwrap();
    let (g, _) = g.confirm(&reply, &gateway_id()).unwrap();
    let forged = ConfirmReply {
        mac: b64(&[0u8; 32]),
        sealed: b64(b"nothing"),
    };
    assert_eq!(g.finish(&forged).unwrap_err(), PairingError::Mismatch);
}

#[test]
fn replayed_messages_do_not_pair() {
    let code = "777777";
    // A complete, recorded pairing.
    let (g, start) = GatewayStart::new(code, "gw").unwrap();
    let (n, reply) = NodeConfirming::new(code, &start).unwrap();
    let (_, confirm) = g.confirm(&reply, &gateway_id()).unwrap();
    n.finish(&confirm, &node_id()).unwrap();
    // An attacker replays the recorded Start and Confirm to the node (same code still shown):
    // the node's fresh SPAKE2 half and session make the old confirmation worthless.
    let (n2, reply2) = NodeConfirming::new(code, &start).unwrap();
    assert_ne!(reply2.session, reply.session);
    assert_eq!(
        n2.finish(&confirm, &node_id()).unwrap_err(),
        PairingError::WrongSession
    );
    let (n3, reply3) = NodeConfirming::new(code, &start).unwrap();
    let mut moved = confirm.clone();
    moved.session = reply3.session;
    assert_eq!(
        n3.finish(&moved, &node_id()).unwrap_err(),
        PairingError::Mismatch
    );
}

const FIVE_MIN: Duration = Duration::from_secs(300);

fn wrong() -> Result<(), PairingError> {
    Err(PairingError::Mismatch)
}

fn right() -> Result<(), PairingError> {
    Ok(())
}

#[test]
fn codes_expire_are_single_use_and_burn_after_three_tries() {
    let t0 = Instant::now();
    let mut p = PendingCode::new("123456".into(), t0, FIVE_MIN);
    let (a, code) = p.begin(t0).unwrap();
    assert_eq!(code, "123456");
    assert_eq!(a.number(), 1);
    p.abandon(&a);
    assert_eq!(
        p.begin(t0 + Duration::from_secs(301)).unwrap_err(),
        PairingError::Expired
    );
    let (a, _) = p.begin(t0).unwrap();
    assert_eq!(p.confirm(&a, t0, wrong), Err(PairingError::Mismatch));
    assert_eq!(p.tries_left(), 1, "the abandoned try counted too");
    let (a, _) = p.begin(t0).unwrap();
    assert_eq!(a.number(), 3);
    assert_eq!(p.confirm(&a, t0, wrong), Err(PairingError::Mismatch));
    assert_eq!(p.begin(t0).unwrap_err(), PairingError::Burned);

    let mut q = PendingCode::new("654321".into(), t0, FIVE_MIN);
    let (a, _) = q.begin(t0).unwrap();
    assert_eq!(q.confirm(&a, t0, right), Ok(()));
    assert_eq!(q.begin(t0).unwrap_err(), PairingError::Burned, "single use");
}

#[test]
fn a_try_is_counted_when_it_starts_not_when_it_fails() {
    // Three attempts that start one after another, none confirming: that is all the code has,
    // whatever happens to them afterwards.
    let t0 = Instant::now();
    let mut p = PendingCode::new("123456".into(), t0, FIVE_MIN);
    for n in 1..=MAX_TRIES {
        let (a, _) = p.begin(t0).unwrap();
        assert_eq!(a.number(), n);
        assert_eq!(p.tries_left(), MAX_TRIES - n);
        p.abandon(&a);
    }
    assert_eq!(p.begin(t0).unwrap_err(), PairingError::Burned);
}

#[test]
fn one_attempt_at_a_time_and_a_refused_one_costs_no_try() {
    let t0 = Instant::now();
    let mut p = PendingCode::new("123456".into(), t0, FIVE_MIN);
    let (first, _) = p.begin(t0).unwrap();
    for _ in 0..10 {
        assert_eq!(p.begin(t0).unwrap_err(), PairingError::Busy);
    }
    assert_eq!(
        p.tries_left(),
        MAX_TRIES - 1,
        "refused starts are not tries"
    );
    assert_eq!(p.in_flight(t0), Some(&first));
    // The one in flight still confirms.
    assert_eq!(p.confirm(&first, t0, right), Ok(()));
}

#[test]
fn an_attempt_times_out_and_frees_the_slot() {
    let t0 = Instant::now();
    let mut p = PendingCode::new("123456".into(), t0, FIVE_MIN);
    let (stalled, _) = p.begin(t0).unwrap();
    assert_eq!(stalled.deadline(), t0 + SESSION_TIMEOUT);
    let late = t0 + SESSION_TIMEOUT;
    assert_eq!(p.in_flight(late), None);
    // A late confirm fails (and never runs key confirmation) …
    assert_eq!(
        p.confirm(&stalled, late, || -> Result<(), PairingError> {
            panic!("key confirmation must not run for a timed-out attempt")
        }),
        Err(PairingError::SessionExpired)
    );
    // … and the slot is free for the next attempt.
    let (next, _) = p.begin(late).unwrap();
    assert_eq!(next.number(), 2);
    // Even an attempt started just before the code expires ends with the code.
    let mut q = PendingCode::new("123456".into(), t0, Duration::from_secs(4));
    let (a, _) = q.begin(t0 + Duration::from_secs(3)).unwrap();
    assert_eq!(a.deadline(), t0 + Duration::from_secs(4));
}

#[test]
fn a_timed_out_attempt_is_freed_by_the_next_start_even_if_never_confirmed() {
    let t0 = Instant::now();
    let mut p = PendingCode::new("123456".into(), t0, FIVE_MIN);
    let (stalled, _) = p.begin(t0).unwrap();
    assert_eq!(
        p.begin(t0 + SESSION_TIMEOUT - Duration::from_millis(1))
            .unwrap_err(),
        PairingError::Busy
    );
    let (next, _) = p.begin(t0 + SESSION_TIMEOUT).unwrap();
    // The stalled one comes back after another took its place.
    assert_eq!(
        p.confirm(&stalled, t0 + SESSION_TIMEOUT, right),
        Err(PairingError::SessionExpired)
    );
    assert_eq!(p.in_flight(t0 + SESSION_TIMEOUT), Some(&next));
}

#[test]
fn a_confirm_after_the_code_was_used_burned_expired_or_replaced_fails() {
    let t0 = Instant::now();
    let never = || -> Result<(), PairingError> { panic!("key confirmation must not run") };

    // Used: an attempt times out, a later one pairs, the first comes back.
    let mut p = PendingCode::new("123456".into(), t0, FIVE_MIN);
    let (old, _) = p.begin(t0).unwrap();
    let later = t0 + SESSION_TIMEOUT;
    let (winner, _) = p.begin(later).unwrap();
    assert_eq!(p.confirm(&winner, later, right), Ok(()));
    assert_eq!(p.confirm(&old, later, never), Err(PairingError::Burned));

    // Burned: an attempt times out, the remaining tries fail, the first comes back.
    let mut p = PendingCode::new("123456".into(), t0, FIVE_MIN);
    let (old, _) = p.begin(t0).unwrap();
    for _ in 1..MAX_TRIES {
        let (a, _) = p.begin(later).unwrap();
        assert_eq!(p.confirm(&a, later, wrong), Err(PairingError::Mismatch));
    }
    assert_eq!(p.confirm(&old, later, never), Err(PairingError::Burned));

    // Expired: the code's life ended while the attempt was in flight.
    let mut p = PendingCode::new("123456".into(), t0, Duration::from_secs(2));
    let (a, _) = p.begin(t0).unwrap();
    assert_eq!(
        p.confirm(&a, t0 + Duration::from_secs(2), never),
        Err(PairingError::Expired)
    );

    // Replaced: the node shows a new code (same digits, even) while the attempt is in flight.
    let mut old_code = PendingCode::new("123456".into(), t0, FIVE_MIN);
    let (a, _) = old_code.begin(t0).unwrap();
    let mut new_code = PendingCode::new("123456".into(), t0, FIVE_MIN);
    assert_ne!(old_code.id(), new_code.id());
    assert_eq!(new_code.confirm(&a, t0, never), Err(PairingError::Replaced));
    // Abandoning the old attempt does not touch the new code.
    let (b, _) = new_code.begin(t0).unwrap();
    new_code.abandon(&a);
    assert_eq!(new_code.in_flight(t0), Some(&b));
}

#[test]
fn a_confirmed_attempt_is_over_whatever_the_outcome() {
    let t0 = Instant::now();
    let mut p = PendingCode::new("123456".into(), t0, FIVE_MIN);
    let (a, _) = p.begin(t0).unwrap();
    assert_eq!(p.confirm(&a, t0, wrong), Err(PairingError::Mismatch));
    // The same attempt cannot be confirmed twice (one guess per try).
    assert_eq!(p.confirm(&a, t0, right), Err(PairingError::SessionExpired));
    // Malformed confirmations end the attempt too.
    let (b, _) = p.begin(t0).unwrap();
    assert!(matches!(
        p.confirm(&b, t0, || -> Result<(), PairingError> {
            Err(PairingError::Malformed("x".into()))
        }),
        Err(PairingError::Malformed(_))
    ));
    assert_eq!(p.in_flight(t0), None);
    assert_eq!(p.tries_left(), 1);
}

#[test]
fn malformed_input_is_a_clear_error() {
    assert_eq!(
        GatewayStart::new("12345", "gw").err(),
        Some(PairingError::BadCode)
    );
    assert_eq!(
        GatewayStart::new("12a456", "gw").err(),
        Some(PairingError::BadCode)
    );
    let bad = Start {
        spake: "not base64!".into(),
        gateway_name: "gw".into(),
    };
    assert!(matches!(
        NodeConfirming::new("123456", &bad).err(),
        Some(PairingError::Malformed(_))
    ));
    let short = Start {
        spake: b64(&[1, 2, 3]),
        gateway_name: "gw".into(),
    };
    assert!(matches!(
        NodeConfirming::new("123456", &short).err(),
        Some(PairingError::Malformed(_))
    ));
}

#[test]
fn a_node_that_dials_pairs_by_the_code_the_gateway_shows_and_both_learn_each_other() {
    let code = new_code();
    // The node types the code: it starts, with its name, and its identity (capabilities too)
    // goes in its confirmation; the gateway's (key, name) comes back sealed.
    let (node, start) = Initiator::new_in(Direction::NodeDials, &code, "macbook").unwrap();
    let (gateway, reply) = Responder::new_in(Direction::NodeDials, &code, &start).unwrap();
    assert_eq!(gateway.gateway_name(), "macbook", "the initiator's name");
    let (node, confirm) = node.confirm(&reply, &node_id()).unwrap();
    let (node_seen_by_gateway, confirm_reply) = gateway.finish(&confirm, &gateway_id()).unwrap();
    let gateway_seen_by_node = node.finish(&confirm_reply).unwrap();
    assert_eq!(node_seen_by_gateway, node_id());
    assert_eq!(gateway_seen_by_node, gateway_id());
}

#[test]
fn a_pairing_started_one_way_cannot_be_finished_the_other_way() {
    let code = "123456";
    let (gateway, start) = Initiator::new_in(Direction::GatewayDials, code, "home-server").unwrap();
    let (node, reply) = Responder::new_in(Direction::NodeDials, code, &start).unwrap();
    let (_, confirm) = gateway.confirm(&reply, &gateway_id()).unwrap();
    assert_eq!(
        node.finish(&confirm, &node_id()).unwrap_err(),
        PairingError::Mismatch,
        "the same code in the other direction must not confirm"
    );
}
