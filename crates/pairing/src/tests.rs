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

#[test]
fn codes_expire_are_single_use_and_burn_after_three_failures() {
    let t0 = Instant::now();
    let mut p = PendingCode::new("123456".into(), t0, Duration::from_secs(300));
    assert_eq!(p.attempt(t0).unwrap(), "123456");
    assert_eq!(
        p.attempt(t0 + Duration::from_secs(301)).unwrap_err(),
        PairingError::Expired
    );
    assert!(!p.failed());
    assert!(!p.failed());
    assert!(p.attempt(t0).is_ok(), "two failures leave one try");
    assert!(p.failed(), "the third failure burns it");
    assert_eq!(p.attempt(t0).unwrap_err(), PairingError::Burned);

    let mut q = PendingCode::new("654321".into(), t0, Duration::from_secs(300));
    q.succeeded();
    assert_eq!(q.attempt(t0).unwrap_err(), PairingError::Burned);
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
