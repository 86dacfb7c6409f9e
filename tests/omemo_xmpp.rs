//! OMEMO over a real Prosody between slixmpp-omemo peers (tests/peers/omemo_peer.py), in both
//! namespaces: legacy `eu.siacs.conversations.axolotl` ("oldmemo") and `urn:xmpp:omemo:2`
//! ("twomemo", with XEP-0420 envelopes). This proves the peer side so that Starling's OMEMO
//! tests can rely on it: device lists and bundles on PEP (publish-options honoured by
//! Prosody), sessions built from bundles both ways, a second device on one account
//! (carbons of our own messages decrypt there too), a bundle refresh, persistent peer
//! storage with catch-up from MAM, encrypted group chat in a members-only non-anonymous
//! room, and failures reported as `omemo_error` instead of a plain message.

use anyhow::{Context as _, Result, ensure};
use serde_json::{Value, json};
use starling::testbed::CONFERENCE_DOMAIN;

use crate::support::{self, EVENT_TIMEOUT, Peer, PeerOptions, TestServer, event_name, unique_name};

const NAMESPACES: [&str; 2] = ["oldmemo", "twomemo"];
/// slixmpp-omemo's fallback body, which no peer may report as a plain message.
const FALLBACK: &str = "This message is OMEMO encrypted.";

async fn connect(server: &TestServer, account: &support::Account, resource: &str) -> Result<Peer> {
    Peer::connect(
        server,
        account,
        PeerOptions {
            resource: Some(resource.into()),
            ..PeerOptions::default()
        },
    )
    .await
}

/// Enables OMEMO on `peer` and checks what it reports about its own device.
async fn enable(peer: &mut Peer, extra: Value) -> Result<Value> {
    let mut cmd = json!({"cmd": "omemo_enable"});
    if let (Some(obj), Some(more)) = (cmd.as_object_mut(), extra.as_object()) {
        obj.extend(more.clone());
    }
    let done = peer.command(cmd).await?;
    let fp = done["fingerprint"].as_str().unwrap_or_default();
    ensure!(
        fp.len() == 64 && fp.chars().all(|c| c.is_ascii_hexdigit()),
        "fingerprint: {done}"
    );
    ensure!(
        done["device_id"].as_u64().is_some_and(|id| id > 0),
        "{done}"
    );
    let namespaces = done["namespaces"].as_array().cloned().unwrap_or_default();
    ensure!(!namespaces.is_empty(), "{done}");
    for ns in namespaces {
        let ns = ns.as_str().unwrap_or_default();
        ensure!(
            done["bundles"][ns]["prekeys"] == 100 && done["bundles"][ns]["spk_id"].is_u64(),
            "{ns} bundle: {done}"
        );
    }
    Ok(done)
}

fn device_id(done: &Value) -> u64 {
    done["device_id"].as_u64().unwrap_or_default()
}

/// The next `omemo_message` at `peer` with this body.
async fn omemo_message(peer: &mut Peer, body: &str) -> Result<Value> {
    peer.next_event_matching(
        |e| event_name(e) == "omemo_message" && e["body"] == body,
        EVENT_TIMEOUT,
    )
    .await
    .with_context(|| format!("{} waiting for the omemo_message {body:?}", peer.jid))
}

/// Encrypts `body` from `peer` to `to` in `ns` and returns the `done` event.
async fn send(peer: &mut Peer, to: &str, body: &str, ns: &str) -> Result<Value> {
    let done = peer
        .command(json!({"cmd": "omemo_send", "to": to, "body": body, "namespace": ns}))
        .await?;
    ensure!(
        done["namespace"] == ns && done["namespaces"] == json!([ns]),
        "{done}"
    );
    ensure!(done["errors"] == json!([]), "{done}");
    Ok(done)
}

/// The `kex` flag of the key for (`jid`, `device`) in a send's `done`, if encrypted for it.
fn kex_for(done: &Value, jid: &str, device: u64) -> Option<bool> {
    done["recipients"].as_array()?.iter().find_map(|r| {
        (r["jid"] == jid && r["device_id"] == device).then(|| r["kex"].as_bool().unwrap_or(false))
    })
}

/// Checks an incoming decrypted message against what was sent.
fn check_received(got: &Value, ns: &str, from_full: &str, sender: &str, dev: &Value) -> Result<()> {
    ensure!(got["namespace"] == ns, "namespace: {got}");
    ensure!(got["from"] == from_full, "from: {got}");
    ensure!(got["sender"] == sender, "sender: {got}");
    ensure!(got["device_id"] == dev["device_id"], "device: {got}");
    ensure!(
        got["fingerprint"] == dev["fingerprint"],
        "fingerprint: {got}"
    );
    ensure!(got["fallback_body"] == FALLBACK, "fallback: {got}");
    if ns == "twomemo" {
        ensure!(
            got["sce"]["from"] == sender && got["sce"]["rpad"] == true,
            "SCE affixes: {got}"
        );
    } else {
        ensure!(got["sce"].is_null(), "{got}");
    }
    Ok(())
}

/// No encrypted message was reported as a plain one (with the fallback body).
fn no_plain_fallback(peer: &mut Peer) -> Result<()> {
    let leaked: Vec<Value> = peer
        .take_backlog()
        .into_iter()
        .filter(|e| match event_name(e) {
            "message" | "groupchat" | "carbon_sent" | "carbon_received" => e["body"] == FALLBACK,
            "omemo_error" => true,
            _ => false,
        })
        .collect();
    ensure!(
        leaked.is_empty(),
        "{}: unexpected plain or failed messages: {leaked:?}",
        peer.jid
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_exchange_omemo_in_both_namespaces_with_a_second_device() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob, carol) = (
        server.account("alice")?,
        server.account("bob")?,
        server.account("carol")?,
    );
    server.befriend(&alice.jid, &bob.jid)?;
    let mut a = connect(&server, &alice, "a").await?;
    let mut b1 = connect(&server, &bob, "one").await?;
    let a_dev = enable(&mut a, json!({})).await?;
    let b1_dev = enable(&mut b1, json!({})).await?;

    // Alice sees Bob's published device, with the identity Bob reports, in both namespaces.
    let devices = a
        .command(json!({"cmd": "omemo_devices", "jid": bob.jid}))
        .await?;
    for ns in NAMESPACES {
        ensure!(
            devices["ids"][ns] == json!([device_id(&b1_dev)]),
            "{devices}"
        );
    }
    ensure!(
        devices["devices"][0]["fingerprint"] == b1_dev["fingerprint"],
        "{devices}"
    );

    // Both ways in each namespace: the first message builds the session (key exchange), the
    // reply confirms it, so the next message is a plain ratchet message.
    for ns in NAMESPACES {
        let body = format!("hello Bob over {ns} <&> ✓");
        let sent = send(&mut a, &bob.jid, &body, ns).await?;
        ensure!(
            kex_for(&sent, &bob.jid, device_id(&b1_dev)) == Some(true),
            "{sent}"
        );
        let got = omemo_message(&mut b1, &body).await?;
        check_received(&got, ns, &a.full_jid, &alice.jid, &a_dev)?;
        ensure!(
            got["id"] == sent["id"] && got["origin_id"] == sent["id"] && got["type"] == "chat",
            "{got}"
        );
        if ns == "twomemo" {
            ensure!(got["sce"]["to"] == bob.jid, "{got}");
        }

        let reply = format!("hello Alice over {ns}");
        let sent = send(&mut b1, &alice.jid, &reply, ns).await?;
        ensure!(
            kex_for(&sent, &alice.jid, device_id(&a_dev)) == Some(false),
            "Bob answers on the session Alice built: {sent}"
        );
        let got = omemo_message(&mut a, &reply).await?;
        check_received(&got, ns, &b1.full_jid, &bob.jid, &b1_dev)?;

        let again = format!("again over {ns}");
        let sent = send(&mut a, &bob.jid, &again, ns).await?;
        ensure!(
            kex_for(&sent, &bob.jid, device_id(&b1_dev)) == Some(false),
            "confirmed session: {sent}"
        );
        omemo_message(&mut b1, &again).await?;
    }
    // Without a namespace the peer prefers OMEMO 2 when the device has it.
    let done = a
        .command(json!({"cmd": "omemo_send", "to": bob.jid, "body": "default namespace"}))
        .await?;
    ensure!(done["namespace"] == "twomemo", "{done}");
    let got = omemo_message(&mut b1, "default namespace").await?;
    ensure!(got["namespace"] == "twomemo", "{got}");

    // A message that cannot be decrypted (here: a garbage key, not even for us) is reported
    // as omemo_error: never dropped, never shown with its fallback body.
    a.command(json!({"cmd": "raw", "xml": format!(
        "<message to='{}' type='chat' id='notforyou'><body>{FALLBACK}</body>\
         <encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='{}'>\
         <key rid='1'>AAAA</key><iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload>\
         </encrypted></message>",
        b1.full_jid, device_id(&a_dev))}))
        .await?;
    let err = b1.next_event("omemo_error", EVENT_TIMEOUT).await?;
    ensure!(
        err["id"] == "notforyou"
            && err["error"].is_string()
            && err["device_id"] == a_dev["device_id"]
            && err["namespaces"] == json!(["oldmemo"]),
        "{err}"
    );
    b1.sync().await?;
    a.sync().await?;
    no_plain_fallback(&mut b1)?;
    no_plain_fallback(&mut a)?;

    // A second device on Bob's account (persistent storage, for the restart below). Its
    // bundle lives next to the first one's: Prosody honours max_items=max as a
    // publish-option, so one device's bundle never evicts the other's.
    let storage = server.temp_dir().join("bob-two-omemo.json");
    let storage = storage.to_str().context("temp path")?.to_owned();
    let mut b2 = connect(&server, &bob, "two").await?;
    let b2_dev = enable(&mut b2, json!({"storage": storage})).await?;
    ensure!(device_id(&b2_dev) != device_id(&b1_dev), "{b2_dev}");
    let bundles = a
        .command(json!({"cmd": "pep_items", "jid": bob.jid, "node": "urn:xmpp:omemo:2:bundles"}))
        .await?;
    let mut item_ids: Vec<String> = bundles["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    item_ids.sort();
    let mut want = vec![
        b1_dev["device_id"].to_string(),
        b2_dev["device_id"].to_string(),
    ];
    want.sort();
    ensure!(item_ids == want, "both twomemo bundles: {bundles}");
    for dev in [&b1_dev, &b2_dev] {
        let node = format!("eu.siacs.conversations.axolotl.bundles:{}", device_id(dev));
        let items = a
            .command(json!({"cmd": "pep_items", "jid": bob.jid, "node": node}))
            .await?;
        ensure!(
            items["items"].as_array().map(Vec::len) == Some(1),
            "{items}"
        );
    }
    let devices = a
        .command(json!({"cmd": "omemo_devices", "jid": bob.jid}))
        .await?;
    for ns in NAMESPACES {
        let mut want = vec![device_id(&b1_dev), device_id(&b2_dev)];
        want.sort_unstable();
        ensure!(devices["ids"][ns] == json!(want), "{devices}");
    }

    for ns in NAMESPACES {
        // Alice -> both of Bob's devices; a new session (key exchange) with the new one only.
        let body = format!("to both of Bob's devices over {ns}");
        let sent = send(&mut a, &bob.jid, &body, ns).await?;
        ensure!(
            kex_for(&sent, &bob.jid, device_id(&b1_dev)) == Some(false)
                && kex_for(&sent, &bob.jid, device_id(&b2_dev)) == Some(true),
            "{sent}"
        );
        for peer in [&mut b1, &mut b2] {
            let got = omemo_message(peer, &body).await?;
            check_received(&got, ns, &a.full_jid, &alice.jid, &a_dev)?;
        }
        // The new device writes to Alice; Bob's first device decrypts the carbon of it (the
        // message is encrypted for the sender's other devices too).
        let body = format!("from Bob's second device over {ns}");
        let sent = send(&mut b2, &alice.jid, &body, ns).await?;
        ensure!(
            kex_for(&sent, &bob.jid, device_id(&b1_dev)).is_some()
                && kex_for(&sent, &alice.jid, device_id(&a_dev)).is_some(),
            "{sent}"
        );
        let got = omemo_message(&mut a, &body).await?;
        check_received(&got, ns, &b2.full_jid, &bob.jid, &b2_dev)?;
        let carbon = omemo_message(&mut b1, &body).await?;
        ensure!(carbon["carbon"] == "sent", "{carbon}");
        check_received(&carbon, ns, &b2.full_jid, &bob.jid, &b2_dev)?;
    }

    // After Bob's first device rotates its signed pre-key and republishes, a newcomer builds
    // sessions from the new bundle.
    let refreshed = b1.command(json!({"cmd": "omemo_refresh"})).await?;
    for ns in NAMESPACES {
        ensure!(
            refreshed["bundles"][ns]["spk_id"] != refreshed["previous"][ns]["spk_id"],
            "{refreshed}"
        );
    }
    let mut c = connect(&server, &carol, "c").await?;
    let c_dev = enable(&mut c, json!({})).await?;
    for ns in NAMESPACES {
        let body = format!("hello from Carol over {ns}");
        let sent = send(&mut c, &bob.jid, &body, ns).await?;
        ensure!(
            kex_for(&sent, &bob.jid, device_id(&b1_dev)) == Some(true),
            "{sent}"
        );
        for peer in [&mut b1, &mut b2] {
            let got = omemo_message(peer, &body).await?;
            check_received(&got, ns, &c.full_jid, &carol.jid, &c_dev)?;
        }
        let body = format!("hello Carol over {ns}");
        send(&mut b1, &carol.jid, &body, ns).await?;
        omemo_message(&mut c, &body).await?;
    }

    // Bob's second device goes offline; Alice keeps writing; it comes back with the same
    // device (persistent storage) and catches up from MAM. Messages it decrypted live cannot
    // be decrypted twice and its own are not encrypted for itself: those are omemo_errors.
    b2.sync().await?;
    b2.quit().await?;
    for ns in NAMESPACES {
        let body = format!("while you were away, over {ns}");
        let sent = send(&mut a, &bob.jid, &body, ns).await?;
        ensure!(
            kex_for(&sent, &bob.jid, device_id(&b2_dev)).is_some(),
            "still encrypted for the offline device: {sent}"
        );
        omemo_message(&mut b1, &body).await?;
    }
    let mut b2 = connect(&server, &bob, "two").await?;
    let again = enable(&mut b2, json!({"storage": storage})).await?;
    ensure!(
        again["device_id"] == b2_dev["device_id"] && again["fingerprint"] == b2_dev["fingerprint"],
        "same device after a restart: {again}"
    );
    let mam = b2
        .command(json!({"cmd": "omemo_mam", "with": alice.jid, "max": 100}))
        .await?;
    for ns in NAMESPACES {
        let got = omemo_message(&mut b2, &format!("while you were away, over {ns}")).await?;
        ensure!(
            got["mam"]["archive_id"].is_string() && got["namespace"] == ns,
            "{got}"
        );
    }
    ensure!(
        mam["failed"].as_u64().is_some_and(|n| n > 0) && mam["decrypted"].as_u64() >= Some(2),
        "{mam}"
    );

    for peer in [&mut a, &mut b1, &mut c] {
        peer.sync().await?;
        no_plain_fallback(peer)?;
    }
    for peer in [a, b1, b2, c] {
        peer.quit().await?;
    }
    server.stop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_exchange_omemo_in_a_members_only_room() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let mut a = server.peer(&alice).await?;
    let mut b = server.peer(&bob).await?;
    let a_dev = enable(&mut a, json!({})).await?;
    let b_dev = enable(&mut b, json!({})).await?;

    // XEP-0384 rooms: members-only and non-anonymous, so members see real JIDs and may read
    // the member list.
    let room = format!("{}@{CONFERENCE_DOMAIN}", unique_name("omemo"));
    a.command(json!({"cmd": "muc_join", "room": room, "nick": "Alice"}))
        .await?;
    a.command(json!({"cmd": "muc_configure", "room": room, "fields": {
        "muc#roomconfig_membersonly": true,
        "muc#roomconfig_whois": "anyone",
    }}))
    .await?;
    a.command(
        json!({"cmd": "muc_affiliation", "room": room, "jid": bob.jid,
                     "affiliation": "member"}),
    )
    .await?;
    b.command(json!({"cmd": "muc_join", "room": room, "nick": "Bob"}))
        .await?;

    for ns in NAMESPACES {
        let body = format!("to the room over {ns}");
        let sent = a
            .command(json!({"cmd": "omemo_muc_send", "room": room, "body": body, "namespace": ns}))
            .await?;
        ensure!(
            sent["members"] == json!([bob.jid])
                && sent["skipped"] == json!([])
                && kex_for(&sent, &bob.jid, device_id(&b_dev)).is_some(),
            "{sent}"
        );
        let got = omemo_message(&mut b, &body).await?;
        check_received(&got, ns, &format!("{room}/Alice"), &alice.jid, &a_dev)?;
        ensure!(
            got["type"] == "groupchat" && got["room"] == room && got["nick"] == "Alice",
            "{got}"
        );
        if ns == "twomemo" {
            ensure!(got["sce"]["to"] == room, "{got}");
        }
        // The room reflects Alice's message; she cannot decrypt it (never encrypted for
        // herself) but reports what she sent.
        let own = omemo_message(&mut a, &body).await?;
        ensure!(
            own["reflection"] == true && own["id"] == sent["id"],
            "{own}"
        );

        let reply = format!("answer in the room over {ns}");
        b.command(json!({"cmd": "omemo_muc_send", "room": room, "body": reply, "namespace": ns}))
            .await?;
        let got = omemo_message(&mut a, &reply).await?;
        check_received(&got, ns, &format!("{room}/Bob"), &bob.jid, &b_dev)?;
        omemo_message(&mut b, &reply).await?;
    }
    for peer in [&mut a, &mut b] {
        peer.sync().await?;
        no_plain_fallback(peer)?;
    }
    a.quit().await?;
    b.quit().await?;
    server.stop()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_only_peer_gets_legacy_omemo() -> Result<()> {
    let server = support::fresh_server()?;
    let (alice, dave) = (server.account("alice")?, server.account("dave")?);
    server.befriend(&alice.jid, &dave.jid)?;
    let mut a = server.peer(&alice).await?;
    let mut d = server.peer(&dave).await?;
    let a_dev = enable(&mut a, json!({})).await?;
    let d_dev = enable(&mut d, json!({"namespaces": ["oldmemo"]})).await?;
    ensure!(
        d_dev["namespaces"] == json!(["oldmemo"]) && d_dev["bundles"]["twomemo"].is_null(),
        "{d_dev}"
    );
    let devices = a
        .command(json!({"cmd": "omemo_devices", "jid": dave.jid}))
        .await?;
    ensure!(
        devices["ids"]["oldmemo"] == json!([device_id(&d_dev)])
            && devices["ids"]["twomemo"] == json!([]),
        "{devices}"
    );

    // Without a namespace the sender falls back to what the device has.
    let done = a
        .command(json!({"cmd": "omemo_send", "to": dave.jid, "body": "legacy please"}))
        .await?;
    ensure!(done["namespace"] == "oldmemo", "{done}");
    let got = omemo_message(&mut d, "legacy please").await?;
    check_received(&got, "oldmemo", &a.full_jid, &alice.jid, &a_dev)?;
    // Forcing OMEMO 2 fails: Dave has no device for it.
    let err = a
        .command(json!({"cmd": "omemo_send", "to": dave.jid, "body": "x", "namespace": "twomemo"}))
        .await
        .err()
        .context("OMEMO 2 to a legacy-only account must fail")?;
    ensure!(err.to_string().contains("NoEligibleDevices"), "{err:#}");
    // Dave cannot use OMEMO 2 either, and answers in the legacy namespace.
    ensure!(
        d.command(
            json!({"cmd": "omemo_send", "to": alice.jid, "body": "x", "namespace": "twomemo"})
        )
        .await
        .is_err()
    );
    send(&mut d, &alice.jid, "legacy answer", "oldmemo").await?;
    let got = omemo_message(&mut a, "legacy answer").await?;
    check_received(&got, "oldmemo", &d.full_jid, &dave.jid, &d_dev)?;
    for peer in [&mut a, &mut d] {
        peer.sync().await?;
        no_plain_fallback(peer)?;
    }
    a.quit().await?;
    d.quit().await?;
    server.stop()
}
