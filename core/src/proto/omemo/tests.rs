//! XEP-0384's own examples (v0.3.0 for the legacy namespace, v0.9.1 for OMEMO 2), XEP-0420's
//! envelope examples, round trips through the crypto core, and hostile input.
//!
//! The XEPs write `BASE64ENCODED...` (v0.3) where the data goes; those examples are used with
//! base64 of real bytes in its place, keeping their whitespace (which is how Conversations-era
//! clients wrapped base64). v0.9's `b64/encoded/data` happens to be valid base64 and is kept.
//! The examples' `<!-- ... -->` comments are left out: XMPP forbids comments (RFC 6120 §11.1),
//! and the parser refuses them.

use anyhow::{Context as _, anyhow};
use chrono::TimeZone as _;

use super::*;
use crate::crypto::omemo::device::Device;
use crate::crypto::omemo::keys::{IdentityKeyPair, label_verifies, sign_label};
use crate::crypto::omemo::payload;
use crate::crypto::omemo::store::{Address, MemoryStore};

fn xml(s: &str) -> anyhow::Result<Element> {
    s.parse().context("test XML")
}

fn jid(s: &str) -> anyhow::Result<BareJid> {
    BareJid::new(s).context("test JID")
}

fn b64(bytes: &[u8]) -> String {
    encode_base64(bytes)
}

/// Base64 broken over lines of 20 characters.
fn wrap(s: &str) -> String {
    s.as_bytes()
        .chunks(20)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("\n            ")
}

/// `b64/encoded/data`, XEP-0384 v0.9's placeholder, decoded.
fn placeholder() -> anyhow::Result<Vec<u8>> {
    Ok(LENIENT_BASE64.decode("b64/encoded/data")?)
}

fn items_of(event: &Element) -> anyhow::Result<pubsub::Notification> {
    pubsub::parse_event(event).ok_or_else(|| anyhow!("not a pubsub event"))
}

// ---------------------------------------------------------------------------------------------
// XEP-0384 v0.3.0 (eu.siacs.conversations.axolotl)
// ---------------------------------------------------------------------------------------------

/// v0.3.0 Example 1: a device list update, and Example 2: adding our own device.
#[test]
fn legacy_device_list_examples() -> anyhow::Result<()> {
    let event = xml("<event xmlns='http://jabber.org/protocol/pubsub#event'>\
         <items node='eu.siacs.conversations.axolotl.devicelist'>\
           <item id='current'>\
             <list xmlns='eu.siacs.conversations.axolotl'>\
               <device id='12345' />\
               <device id='4223' />\
             </list>\
           </item>\
         </items>\
       </event>")?;
    let n = items_of(&event)?;
    assert_eq!(
        Node::parse(&n.node),
        Some(Node::DeviceList(Namespace::Legacy))
    );
    let mut list = device_list_from_items(Namespace::Legacy, &n.published)?;
    assert_eq!(list.ids().collect::<Vec<_>>(), [12345, 4223]);

    // Example 2: we announce device 31415.
    assert!(list.ensure(DeviceEntry::new(31415)));
    assert!(!list.ensure(DeviceEntry::new(31415)), "already listed");
    let publish = String::from(&Element::from(publish_device_list(&list)));
    assert!(
        publish.contains("<publish node='eu.siacs.conversations.axolotl.devicelist'>"),
        "{publish}"
    );
    assert!(publish.contains("<item id='current'>"), "{publish}");
    assert!(
        publish.contains(
            "<list xmlns='eu.siacs.conversations.axolotl'><device id='12345'/>\
             <device id='4223'/><device id='31415'/></list>"
        ),
        "{publish}"
    );
    assert!(publish.contains("pubsub#access_model") && publish.contains("<value>open</value>"));
    assert_eq!(DeviceList::parse(&list.to_element())?, list);
    Ok(())
}

/// v0.3.0 Example 3: announcing bundle information (base64 wrapped on its own lines).
#[test]
fn legacy_bundle_example() -> anyhow::Result<()> {
    let spk = [[5u8].as_slice(), &[1; 32]].concat();
    let ik = [[5u8].as_slice(), &[2; 32]].concat();
    let (pk1, pk2, pk3) = ([5u8; 33], [6u8; 33], [7u8; 33]);
    let el = xml(&format!(
        "<bundle xmlns='eu.siacs.conversations.axolotl'>
          <signedPreKeyPublic signedPreKeyId='1'>
            {}
          </signedPreKeyPublic>
          <signedPreKeySignature>
            {}
          </signedPreKeySignature>
          <identityKey>
            {}
          </identityKey>
          <prekeys>
            <preKeyPublic preKeyId='1'>
              {}
            </preKeyPublic>
            <preKeyPublic preKeyId='2'>
              {}
            </preKeyPublic>
            <preKeyPublic preKeyId='3'>
              {}
            </preKeyPublic>
          </prekeys>
        </bundle>",
        b64(&spk),
        // A 64-byte signature, wrapped as MIME base64 wraps it.
        wrap(&b64(&[9; 64])),
        b64(&ik),
        b64(&pk1),
        b64(&pk2),
        b64(&pk3)
    ))?;
    let (ns, bundle) = parse_bundle(&el)?;
    assert_eq!(ns, Namespace::Legacy);
    assert_eq!(bundle.spk_id, 1);
    assert_eq!(bundle.spk, spk);
    assert_eq!(bundle.spk_sig, [9; 64]);
    assert_eq!(bundle.ik, ik);
    assert_eq!(
        bundle.prekeys,
        [(1, pk1.to_vec()), (2, pk2.to_vec()), (3, pk3.to_vec())]
    );
    assert_eq!(
        parse_bundle(&bundle_element(ns, &bundle))?,
        (ns, bundle.clone())
    );

    let publish = String::from(&Element::from(publish_bundle(ns, 31415, &bundle)));
    assert!(
        publish.contains("<publish node='eu.siacs.conversations.axolotl.bundles:31415'>"),
        "{publish}"
    );
    assert!(publish.contains("<item id='current'>"), "{publish}");
    assert!(!publish.contains("max_items"), "one item per legacy node");
    assert_eq!(
        Node::parse("eu.siacs.conversations.axolotl.bundles:31415"),
        Some(Node::Bundle(Namespace::Legacy, Some(31415)))
    );
    let fetch = String::from(&request_bundle(ns, 31415));
    assert!(
        fetch.contains("node='eu.siacs.conversations.axolotl.bundles:31415'"),
        "{fetch}"
    );
    Ok(())
}

/// v0.3.0 Example 5: sending a message, and Example 6: a key transport element.
#[test]
fn legacy_message_examples() -> anyhow::Result<()> {
    let message = xml(&format!(
        "<message xmlns='jabber:client' to='juliet@capulet.lit' from='romeo@montague.lit' id='send1'>
          <encrypted xmlns='eu.siacs.conversations.axolotl'>
            <header sid='27183'>
              <key rid='31415'>{}</key>
              <key prekey=\"true\" rid='12321'>{}</key>
                <iv>{}</iv>
            </header>
            <payload>{}</payload>
          </encrypted>
          <store xmlns='urn:xmpp:hints'/>
        </message>",
        b64(b"key for 31415"),
        b64(b"key exchange for 12321"),
        b64(&[3; 12]),
        b64(b"ciphertext")
    ))?;
    let e = Encrypted::find(&message).ok_or_else(|| anyhow!("no <encrypted/>"))??;
    assert_eq!(e.ns, Namespace::Legacy);
    assert_eq!(e.sid, 27183);
    assert_eq!(
        e.keys,
        [
            KeyFor {
                jid: None,
                rid: 31415,
                kex: false,
                data: b"key for 31415".to_vec()
            },
            KeyFor {
                jid: None,
                rid: 12321,
                kex: true,
                data: b"key exchange for 12321".to_vec()
            },
        ]
    );
    assert_eq!(e.iv.as_deref(), Some(&[3u8; 12][..]));
    assert_eq!(e.payload.as_deref(), Some(&b"ciphertext"[..]));
    assert!(!e.is_empty());
    // Legacy keys carry no JID: any of ours matches.
    let juliet = jid("juliet@capulet.lit")?;
    assert!(e.key_for(&juliet, 12321).is_some_and(|k| k.kex));
    assert!(e.key_for(&juliet, 1).is_none());
    let again = e.to_element()?;
    let s = String::from(&again);
    assert!(s.contains("<key prekey='true' rid='12321'>"), "{s}");
    assert_eq!(Encrypted::parse(&again)?, e);

    let transport = xml(&format!(
        "<encrypted xmlns='eu.siacs.conversations.axolotl'>
          <header sid='27183'>
            <key rid='31415'>{}</key>
            <key prekey=\"true\" rid='12321'>{}</key>
            <iv>{}</iv>
          </header>
        </encrypted>",
        b64(b"a"),
        b64(b"b"),
        b64(&[4; 12])
    ))?;
    let t = Encrypted::parse(&transport)?;
    assert!(t.is_empty());
    assert_eq!(t.keys.len(), 2);
    assert_eq!(Encrypted::parse(&t.to_element()?)?, t);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XEP-0384 v0.9.1 (urn:xmpp:omemo:2)
// ---------------------------------------------------------------------------------------------

/// §5.2 Example 1: a device list update with a signed label, and §5.3.1 Example 2: the
/// published list.
#[test]
fn omemo2_device_list_examples() -> anyhow::Result<()> {
    let event = xml("<event xmlns='http://jabber.org/protocol/pubsub#event'>
        <items node='urn:xmpp:omemo:2:devices'>
          <item id='current'>
            <devices xmlns='urn:xmpp:omemo:2'>
              <device id='12345' />
              <device id='4223' label='Gajim on Ubuntu Linux' labelsig='b64/encoded/data' />
            </devices>
          </item>
        </items>
      </event>")?;
    let n = items_of(&event)?;
    assert_eq!(
        Node::parse(&n.node),
        Some(Node::DeviceList(Namespace::Omemo2))
    );
    let list = device_list_from_items(Namespace::Omemo2, &n.published)?;
    assert_eq!(list.ids().collect::<Vec<_>>(), [12345, 4223]);
    let gajim = &list.devices[1];
    assert_eq!(gajim.label.as_deref(), Some("Gajim on Ubuntu Linux"));
    assert_eq!(gajim.labelsig.as_deref(), Some(placeholder()?.as_slice()));
    // A label whose signature does not verify is not shown (the placeholder is no signature).
    let someone = IdentityKeyPair::generate().public(Namespace::Omemo2);
    assert!(!label_verifies(
        &someone,
        "Gajim on Ubuntu Linux",
        gajim.labelsig.as_deref().unwrap_or_default()
    ));
    // The legacy namespace is not this one.
    assert!(matches!(
        device_list_from_items(Namespace::Legacy, &n.published),
        Err(Error::WrongElement { .. })
    ));

    let published = xml("<devices xmlns='urn:xmpp:omemo:2'>
          <device id='12345' label='Dino on Lenovo Thinkpad T495' labelsig='b64/encoded/data' />
          <device id='4223' />
          <device id='31415' label='Conversations on Pixel 3' labelsig='b64/encoded/data' />
        </devices>")?;
    let list = DeviceList::parse(&published)?;
    assert_eq!(list.ids().collect::<Vec<_>>(), [12345, 4223, 31415]);
    // Republishing keeps the other devices' labels and signatures.
    assert_eq!(DeviceList::parse(&list.to_element())?, list);
    let publish = String::from(&Element::from(publish_device_list(&list)));
    assert!(
        publish.contains("<publish node='urn:xmpp:omemo:2:devices'><item id='current'>"),
        "{publish}"
    );
    assert!(publish.contains("labelsig='b64/encoded/data'"), "{publish}");
    assert!(publish.contains("<value>open</value>"), "{publish}");
    Ok(())
}

#[test]
fn signed_labels_verify() {
    let identity = IdentityKeyPair::generate();
    let public = identity.public(Namespace::Omemo2);
    let label = "Starling on the desk";
    let entry = DeviceEntry::with_label(7, label, sign_label(&identity, label));
    let sig = entry.labelsig.clone().unwrap_or_default();
    assert!(label_verifies(&public, label, &sig));
    assert!(!label_verifies(&public, "Starling on the deck", &sig));
    let other = IdentityKeyPair::generate().public(Namespace::Omemo2);
    assert!(!label_verifies(&other, label, &sig));
    let mut list = DeviceList::new(Namespace::Omemo2, [1, 7]);
    assert!(list.ensure(entry.clone()), "the label is new");
    let back = DeviceList::parse(&list.to_element()).expect("parses");
    assert_eq!(back.devices[1], entry);
}

/// §5.3.2 Examples 3 and 4: publishing a bundle.
#[test]
fn omemo2_bundle_example() -> anyhow::Result<()> {
    let el = xml("<bundle xmlns='urn:xmpp:omemo:2'>
          <spk id='1'>b64/encoded/data</spk>
          <spks>b64/encoded/data</spks>
          <ik>b64/encoded/data</ik>
          <prekeys>
            <pk id='1'>b64/encoded/data</pk>
            <pk id='2'>b64/encoded/data</pk>
            <pk id='100'>b64/encoded/data</pk>
          </prekeys>
        </bundle>")?;
    let data = placeholder()?;
    let (ns, bundle) = parse_bundle(&el)?;
    assert_eq!(ns, Namespace::Omemo2);
    assert_eq!(bundle.spk_id, 1);
    assert_eq!(
        (&bundle.spk, &bundle.spk_sig, &bundle.ik),
        (&data, &data, &data)
    );
    assert_eq!(
        bundle.prekeys.iter().map(|p| p.0).collect::<Vec<_>>(),
        [1, 2, 100]
    );
    assert_eq!(
        parse_bundle(&bundle_element(ns, &bundle))?,
        (ns, bundle.clone())
    );

    let publish = String::from(&Element::from(publish_bundle(ns, 31415, &bundle)));
    assert!(
        publish.contains("<publish node='urn:xmpp:omemo:2:bundles'><item id='31415'>"),
        "{publish}"
    );
    assert!(
        publish.contains("<spk id='1'>b64/encoded/data</spk>"),
        "{publish}"
    );
    for option in [
        "pubsub#max_items",
        "<value>max</value>",
        "pubsub#access_model",
    ] {
        assert!(publish.contains(option), "{option} missing: {publish}");
    }
    // §5.4 Example 5: fetching it.
    let fetch = String::from(&request_bundle(ns, 31415));
    assert!(
        fetch.contains("<items node='urn:xmpp:omemo:2:bundles'><item id='31415'/></items>"),
        "{fetch}"
    );

    // Picking the device's item out of a result holding several.
    let mut other = bundle.clone();
    other.spk_id = 2;
    let items = vec![
        RawItem {
            id: Some("31415".into()),
            publisher: None,
            payload: Some(bundle_element(ns, &bundle)),
        },
        RawItem {
            id: Some("27183".into()),
            publisher: None,
            payload: Some(bundle_element(ns, &other)),
        },
    ];
    assert_eq!(bundle_from_items(ns, 27183, &items)?, other);
    assert_eq!(bundle_from_items(ns, 31415, &items)?, bundle);
    assert_eq!(
        bundle_from_items(ns, 1, &items),
        Err(Error::MissingElement {
            parent: "item",
            element: "bundle"
        })
    );
    Ok(())
}

/// §6.3 Example 7: sending a message; §8.4 Example 11: to a group chat.
#[test]
fn omemo2_message_examples() -> anyhow::Result<()> {
    let example = |payload: &str| {
        format!(
            "<message xmlns='jabber:client' to='juliet@capulet.lit' from='romeo@montague.lit' id='send1'>
              <encrypted xmlns='urn:xmpp:omemo:2'>
                <header sid='27183'>
                  <keys jid='juliet@capulet.lit'>
                    <key rid='31415'>b64/encoded/data</key>
                  </keys>
                  <keys jid='romeo@montague.lit'>
                    <key rid='1337'>b64/encoded/data</key>
                    <key kex='true' rid='12321'>b64/encoded/data</key>
                          </keys>
                </header>
                <payload>
                  {payload}
                </payload>
              </encrypted>
              <store xmlns='urn:xmpp:hints'/>
            </message>"
        )
    };
    // The XEP's payload placeholder is 53 characters: not base64.
    let verbatim = xml(&example(
        "base64/encoded/message/key/encrypted/envelope/element",
    ))?;
    assert_eq!(
        Encrypted::find(&verbatim),
        Some(Err(Error::InvalidBase64("payload")))
    );
    let message = xml(&example(&b64(b"encrypted envelope")))?;
    let e = Encrypted::find(&message).ok_or_else(|| anyhow!("no <encrypted/>"))??;
    assert_eq!((e.ns, e.sid), (Namespace::Omemo2, 27183));
    assert_eq!(e.payload.as_deref(), Some(&b"encrypted envelope"[..]));
    assert_eq!(e.iv, None);
    let (juliet, romeo) = (jid("juliet@capulet.lit")?, jid("romeo@montague.lit")?);
    assert_eq!(
        e.keys
            .iter()
            .map(|k| (k.jid.clone(), k.rid, k.kex))
            .collect::<Vec<_>>(),
        [
            (Some(juliet.clone()), 31415, false),
            (Some(romeo.clone()), 1337, false),
            (Some(romeo.clone()), 12321, true),
        ]
    );
    // Keys are found by our JID *and* device id.
    assert_eq!(e.key_for(&juliet, 31415).map(|k| k.rid), Some(31415));
    assert!(e.key_for(&romeo, 31415).is_none());
    assert!(e.key_for(&romeo, 12321).is_some_and(|k| k.kex));
    let again = e.to_element()?;
    let s = String::from(&again);
    assert!(
        s.contains("<keys jid='juliet@capulet.lit'><key rid='31415'>b64/encoded/data</key></keys>"),
        "{s}"
    );
    assert!(s.contains("<key kex='true' rid='12321'>"), "{s}");
    assert_eq!(Encrypted::parse(&again)?, e);

    let group = xml("<encrypted xmlns='urn:xmpp:omemo:2'>
        <header sid='27183'>
          <keys jid='juliet@capulet.lit'>
            <key rid='31415'>b64/encoded/data</key>
          </keys>
          <keys jid='romeo@montague.lit'>
            <key kex='true' rid='123'>b64/encoded/data</key>
          </keys>
          <keys jid='mercutio@verona.lit'>
            <key kex='true' rid='456'>b64/encoded/data</key>
          </keys>
        </header>
      </encrypted>")?;
    let g = Encrypted::parse(&group)?;
    assert!(g.is_empty(), "an empty OMEMO message");
    assert_eq!(g.keys.len(), 3);
    assert!(g.key_for(&jid("mercutio@verona.lit")?, 456).is_some());
    assert_eq!(Encrypted::parse(&g.to_element()?)?, g);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// XEP-0420 envelopes
// ---------------------------------------------------------------------------------------------

/// XEP-0384 §6.1 Example 6: a plaintext envelope.
#[test]
fn omemo2_envelope_example() -> anyhow::Result<()> {
    let env = Envelope::parse(&xml("<envelope xmlns='urn:xmpp:sce:1'>
          <content>
            <body xmlns='jabber:client'>
             Hello World!
            </body>
          </content>
          <rpad>...</rpad>
          <from jid='romeo@montague.lit'/>
        </envelope>")?)?;
    assert_eq!(env.body().as_deref().map(str::trim), Some("Hello World!"));
    assert_eq!(env.rpad.as_deref(), Some("..."));
    let (romeo, juliet) = (jid("romeo@montague.lit")?, jid("juliet@capulet.lit")?);
    assert_eq!(env.from.as_ref(), Some(&romeo));
    assert_eq!((env.to.as_ref(), env.time), (None, None));
    let chat = StanzaInfo {
        from: &romeo,
        to: &juliet,
        groupchat: false,
        sent: None,
    };
    env.check(&chat)?;
    // In a group chat, <to/> is required.
    let room = jid("secret-room@conference.capulet.lit")?;
    let groupchat = StanzaInfo {
        to: &room,
        groupchat: true,
        ..chat
    };
    assert_eq!(env.check(&groupchat), Err(Error::MissingAffix("to")));
    // A different sender is refused.
    let mallory = jid("mallory@evil.example")?;
    assert!(matches!(
        env.check(&StanzaInfo {
            from: &mallory,
            ..chat
        }),
        Err(Error::AffixMismatch { affix: "from", .. })
    ));

    // §6.5 Example 8: opting out (no affixes at all).
    let opt_out = Envelope::parse(&xml("<envelope xmlns='urn:xmpp:sce:1'>
          <content>
            <opt-out xmlns='urn:xmpp:omemo:2'>
              <reason>
                Sorry, but for compliance reasons I need a permanent,
                server-side, record of our conversation.
              </reason>
            </opt-out>
          </content>
        </envelope>")?)?;
    assert!(opt_out.content[0].is("opt-out", "urn:xmpp:omemo:2"));
    assert_eq!(opt_out.body(), None);
    opt_out.check(&chat)?;
    Ok(())
}

/// XEP-0420 §4 Example 1's affixes, and §6.1 Example 5's content.
#[test]
fn sce_affix_examples() -> anyhow::Result<()> {
    let env = Envelope::parse(&xml("<envelope xmlns='urn:xmpp:sce:1'>
          <content>
            <body xmlns='jabber:client'>[...]</body>
            <x xmlns='jabber:x:oob'>
              <url>https://en.wikipedia.org/wiki/Fight_Club#Plot</url>
            </x>
          </content>
          <time stamp='2004-01-25T06:05:00+01:00'/>
          <to jid='missioncontrol@houston.nasa.gov'/>
          <from jid='opportunity@mars.planet'/>
          <rpad>C1DHN9HK-9A25tSmwK4hU!Jji9%GKYK^syIlHJT9TnI4</rpad>
        </envelope>")?)?;
    let stamp = Utc
        .with_ymd_and_hms(2004, 1, 25, 5, 5, 0)
        .single()
        .ok_or_else(|| anyhow!("date"))?;
    assert_eq!(env.time, Some(stamp));
    assert_eq!(env.body().as_deref(), Some("[...]"));
    assert!(env.content[1].is("x", "jabber:x:oob"));
    assert_eq!(
        env.rpad.as_deref(),
        Some("C1DHN9HK-9A25tSmwK4hU!Jji9%GKYK^syIlHJT9TnI4")
    );
    let (rover, houston) = (
        jid("opportunity@mars.planet")?,
        jid("missioncontrol@houston.nasa.gov")?,
    );
    let ok = StanzaInfo {
        from: &rover,
        to: &houston,
        groupchat: false,
        sent: Some(stamp + TimeDelta::minutes(20)),
    };
    env.check(&ok)?;
    let elsewhere = jid("someone@else.example")?;
    assert_eq!(
        env.check(&StanzaInfo {
            to: &elsewhere,
            ..ok
        }),
        Err(Error::AffixMismatch {
            affix: "to",
            expected: "someone@else.example".into(),
            found: "missioncontrol@houston.nasa.gov".into(),
        })
    );
    assert_eq!(
        env.check(&StanzaInfo {
            sent: Some(stamp + TimeDelta::days(3)),
            ..ok
        }),
        Err(Error::TimeSkew {
            seconds: -3 * 24 * 3600
        })
    );
    Ok(())
}

#[test]
fn envelopes_round_trip_with_padding() -> anyhow::Result<()> {
    let (alice, bob) = (jid("alice@example.org")?, jid("bob@example.org")?);
    let now = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .ok_or_else(|| anyhow!("date"))?;
    let mut lengths = Vec::new();
    for _ in 0..50 {
        let env = Envelope::with_body("ok", alice.clone(), bob.clone(), now);
        let rpad = env.rpad.as_deref().unwrap_or_default();
        assert!(rpad.chars().all(|c| c.is_ascii_alphanumeric()));
        lengths.push(rpad.len());
        let back = Envelope::from_bytes(&env.to_bytes())?;
        assert_eq!(back, env);
        assert_eq!(back.body().as_deref(), Some("ok"));
    }
    let body_len =
        String::from(&Element::builder("body", JABBER_CLIENT).append("ok").build()).len();
    let floor = RPAD_MIN_CONTENT - body_len;
    assert!(
        lengths
            .iter()
            .all(|l| (floor..=floor + RPAD_MAX).contains(l)),
        "{lengths:?}"
    );
    assert!(lengths.iter().any(|l| *l != lengths[0]), "random lengths");
    // Long content gets only the random part.
    let long = Envelope::with_body(&"x".repeat(1000), alice, bob, now);
    assert!(long.rpad.as_deref().unwrap_or_default().len() <= RPAD_MAX);
    Ok(())
}

/// XEP-0420 §8: server-processed elements inside the envelope are dropped; a body without its
/// `jabber:client` namespace is read as the body.
#[test]
fn server_processed_elements_are_dropped() -> anyhow::Result<()> {
    let env = Envelope::parse(&xml("<envelope xmlns='urn:xmpp:sce:1'><content>\
           <body>plain</body>\
           <store xmlns='urn:xmpp:hints'/>\
           <stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='example.org'/>\
           <origin-id xmlns='urn:xmpp:sid:0' id='kept'/>\
           <addresses xmlns='http://jabber.org/protocol/address'/>\
           <encryption xmlns='urn:xmpp:eme:0' namespace='urn:xmpp:otr:0'/>\
           <envelope xmlns='urn:xmpp:sce:1'/>\
         </content></envelope>")?)?;
    let names: Vec<_> = env.content.iter().map(|c| c.name().to_owned()).collect();
    assert_eq!(names, ["body", "origin-id"]);
    assert_eq!(env.body().as_deref(), Some("plain"));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Through the crypto core
// ---------------------------------------------------------------------------------------------

/// Bob's real bundle goes out as XML and comes back; Alice encrypts a message to Bob and to
/// her own other device, the `<encrypted/>` crosses as text, both decrypt it.
#[test]
fn real_messages_round_trip_in_both_namespaces() -> anyhow::Result<()> {
    let (alice_jid, bob_jid) = (jid("alice@example.org")?, jid("bob@example.org")?);
    let now = Utc::now();
    for ns in Namespace::ALL {
        let device = |id| Device::open(MemoryStore::default(), || id, 1_000);
        let (alice, alice2, bob) = (device(11)?, device(12)?, device(21)?);
        let mut targets = Vec::new();
        for (owner, d) in [(&bob_jid, &bob), (&alice_jid, &alice2)] {
            let published = bundle_element(ns, &d.bundle(ns)?);
            let wire = xml(&String::from(&published))?;
            let (got, bundle) = parse_bundle(&wire)?;
            assert_eq!(got, ns);
            assert_eq!(bundle, d.bundle(ns)?);
            targets.push((owner.clone(), d.id(), bundle.decode(ns)?));
        }

        let plaintext = match ns {
            Namespace::Legacy => b"hello Bob".to_vec(),
            Namespace::Omemo2 => {
                Envelope::with_body("hello Bob", alice_jid.clone(), bob_jid.clone(), now).to_bytes()
            }
        };
        let sealed = payload::seal(ns, &plaintext);
        let mut keys = Vec::new();
        for (owner, id, bundle) in &targets {
            let k = alice.encrypt(
                &Address::new(ns, owner.as_str(), *id),
                Some(bundle),
                &sealed.key_material,
            )?;
            keys.push(KeyFor {
                jid: Some(owner.clone()),
                rid: *id,
                kex: k.kex,
                data: k.data,
            });
        }
        let out = Encrypted {
            ns,
            sid: alice.id(),
            keys,
            iv: sealed.iv.map(|iv| iv.to_vec()),
            payload: Some(sealed.payload.clone()),
        };
        let mut message = Element::builder("message", JABBER_CLIENT)
            .attr(n!("to"), bob_jid.as_str())
            .append(out.to_element()?)
            .build();
        for d in decorations(ns) {
            message.append_child(d);
        }
        let wire = xml(&String::from(&message))?;

        for (me, d) in [(&bob_jid, &bob), (&alice_jid, &alice2)] {
            let got = Encrypted::find(&wire).ok_or_else(|| anyhow!("no <encrypted/>"))??;
            assert_eq!(got.sid, alice.id());
            let key = got
                .key_for(me, d.id())
                .ok_or_else(|| anyhow!("no key for {me}"))?;
            assert!(key.kex, "first message starts the session");
            let from = Address::new(ns, alice_jid.as_str(), got.sid);
            let km = d.decrypt(&from, key.kex, &key.data)?;
            let opened = payload::open(
                ns,
                &km.plaintext,
                got.payload.as_deref().unwrap_or_default(),
                got.iv.as_deref(),
            )?;
            match ns {
                Namespace::Legacy => assert_eq!(opened, b"hello Bob"),
                Namespace::Omemo2 => {
                    let env = Envelope::from_bytes(&opened)?;
                    env.check(&StanzaInfo {
                        from: &alice_jid,
                        to: &bob_jid,
                        groupchat: false,
                        sent: Some(now),
                    })?;
                    assert_eq!(env.body().as_deref(), Some("hello Bob"));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Decorations and nodes
// ---------------------------------------------------------------------------------------------

#[test]
fn decorations_are_what_conversations_sends_plus_a_fallback_marker() -> anyhow::Result<()> {
    for ns in Namespace::ALL {
        let d = decorations(ns);
        let eme = ExplicitMessageEncryption::try_from(d[0].clone())?;
        assert_eq!(eme.namespace, ns.xmlns());
        assert!(eme.name.is_some());
        assert!(d[1].is("body", JABBER_CLIENT));
        assert_eq!(d[1].text(), FALLBACK_BODY);
        assert!(d[2].is("fallback", super::super::ns::FALLBACK));
        assert_eq!(d[2].attr("for"), Some(ns.xmlns()));
        assert!(d[3].is("store", super::super::ns::HINTS));
    }
    assert_eq!(
        String::from(&eme(Namespace::Legacy)),
        "<encryption xmlns='urn:xmpp:eme:0' name='OMEMO' namespace='eu.siacs.conversations.axolotl'/>"
    );
    let empty = empty_message_decorations();
    assert_eq!(empty.len(), 1);
    assert!(empty[0].is("store", super::super::ns::HINTS));
    Ok(())
}

#[test]
fn nodes() {
    assert_eq!(
        Node::parse(BUNDLES_NODE),
        Some(Node::Bundle(Namespace::Omemo2, None))
    );
    assert_eq!(
        Node::parse("eu.siacs.conversations.axolotl.bundles:0"),
        None
    );
    assert_eq!(
        Node::parse("eu.siacs.conversations.axolotl.bundles:x"),
        None
    );
    assert_eq!(Node::parse("urn:xmpp:microblog:0"), None);
    assert_eq!(
        notify_feature(Namespace::Legacy),
        "eu.siacs.conversations.axolotl.devicelist+notify"
    );
    assert_eq!(
        notify_feature(Namespace::Omemo2),
        "urn:xmpp:omemo:2:devices+notify"
    );
    let fetch = String::from(&request_device_list(Namespace::Omemo2));
    assert!(
        fetch.contains("<items max_items='1' node='urn:xmpp:omemo:2:devices'/>"),
        "{fetch}"
    );
    assert_eq!(
        device_list_from_items(Namespace::Omemo2, &[]),
        Ok(DeviceList::new(Namespace::Omemo2, []))
    );
}

// ---------------------------------------------------------------------------------------------
// Hostile and sloppy input
// ---------------------------------------------------------------------------------------------

fn legacy_encrypted(header_attrs: &str, keys: &str) -> String {
    format!(
        "<encrypted xmlns='eu.siacs.conversations.axolotl'><header {header_attrs}>{keys}\
         <iv>AAAAAAAAAAAAAAAA</iv></header><payload>AAAA</payload></encrypted>"
    )
}

fn parse_encrypted(s: &str) -> Result<Encrypted> {
    Encrypted::parse(&s.parse::<Element>().expect("test XML"))
}

#[test]
fn hostile_encrypted_elements_get_specific_errors() {
    let key = "<key rid='1'>AAAA</key>";
    assert_eq!(
        parse_encrypted(&legacy_encrypted("", key)),
        Err(Error::MissingAttribute {
            element: "header",
            attribute: "sid"
        })
    );
    for sid in ["abc", "0", "-1", "2147483648", "99999999999", ""] {
        assert!(
            matches!(
                parse_encrypted(&legacy_encrypted(&format!("sid='{sid}'"), key)),
                Err(Error::InvalidAttribute {
                    element: "header",
                    attribute: "sid",
                    ..
                })
            ),
            "sid {sid:?}"
        );
    }
    assert_eq!(
        parse_encrypted(&legacy_encrypted("sid='1'", "<key rid='one'>AAAA</key>")),
        Err(Error::InvalidAttribute {
            element: "key",
            attribute: "rid",
            value: "one".into()
        })
    );
    assert_eq!(
        parse_encrypted(&legacy_encrypted("sid='1'", "<key>AAAA</key>")),
        Err(Error::MissingAttribute {
            element: "key",
            attribute: "rid"
        })
    );
    assert_eq!(
        parse_encrypted(&legacy_encrypted(
            "sid='1'",
            "<key rid='1'>not base64!</key>"
        )),
        Err(Error::InvalidBase64("key"))
    );
    assert!(matches!(
        parse_encrypted(&legacy_encrypted(
            "sid='1'",
            "<key rid='1' prekey='maybe'>AAAA</key>"
        )),
        Err(Error::InvalidAttribute {
            attribute: "prekey",
            ..
        })
    ));
    // prekey='1' is true, as xs:boolean says (and some clients write).
    let e = parse_encrypted(&legacy_encrypted(
        "sid='1'",
        "<key rid='1' prekey='1'>AAAA</key>",
    ))
    .expect("parses");
    assert!(e.keys[0].kex);

    let many = key.repeat(MAX_KEYS + 1);
    assert_eq!(
        parse_encrypted(&legacy_encrypted("sid='1'", &many)),
        Err(Error::TooMany {
            element: "key",
            max: MAX_KEYS
        })
    );
    assert_eq!(
        parse_encrypted(&legacy_encrypted("sid='1'", &key.repeat(MAX_KEYS))).map(|e| e.keys.len()),
        Ok(MAX_KEYS)
    );
    let huge = format!("<key rid='1'>{}</key>", "A".repeat(MAX_KEY_BYTES * 2));
    assert_eq!(
        parse_encrypted(&legacy_encrypted("sid='1'", &huge)),
        Err(Error::TooLarge {
            element: "key",
            max: MAX_KEY_BYTES
        })
    );
    let big_payload = format!(
        "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'/><payload>{}</payload></encrypted>",
        "A".repeat(MAX_PAYLOAD_BYTES / 3 * 4 + 8)
    );
    assert_eq!(
        parse_encrypted(&big_payload),
        Err(Error::TooLarge {
            element: "payload",
            max: MAX_PAYLOAD_BYTES
        })
    );
    // Other namespaces (OMEMO 1, a typo) are not OMEMO to us.
    for xmlns in ["urn:xmpp:omemo:1", "eu.siacs.conversations.axolotl.x", ""] {
        let s = format!("<encrypted xmlns='{xmlns}'><header sid='1'/></encrypted>");
        assert!(
            matches!(
                parse_encrypted(&s),
                Err(Error::WrongElement {
                    expected: "encrypted",
                    ..
                })
            ),
            "{xmlns}"
        );
    }
    assert_eq!(
        parse_encrypted("<encrypted xmlns='urn:xmpp:omemo:2'><payload>AAAA</payload></encrypted>"),
        Err(Error::MissingElement {
            parent: "encrypted",
            element: "header"
        })
    );
    assert_eq!(
        parse_encrypted(
            "<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'>\
             <key rid='2'>AAAA</key></header><payload>AAAA</payload></encrypted>"
        ),
        Err(Error::MissingElement {
            parent: "header",
            element: "iv"
        })
    );
    assert_eq!(
        parse_encrypted(
            "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys>\
             <key rid='2'>AAAA</key></keys></header></encrypted>"
        ),
        Err(Error::MissingAttribute {
            element: "keys",
            attribute: "jid"
        })
    );
    assert!(matches!(
        parse_encrypted(
            "<encrypted xmlns='urn:xmpp:omemo:2'><header sid='1'><keys jid='@'>\
             <key rid='2'>AAAA</key></keys></header></encrypted>"
        ),
        Err(Error::InvalidAttribute {
            element: "keys",
            attribute: "jid",
            ..
        })
    ));
    // Base64 wrapped over lines, without padding: fine.
    let e = parse_encrypted(&legacy_encrypted(
        "sid=' 7 '",
        "<key rid='3'>\n  AAEC\n  Aw\n</key>",
    ))
    .expect("lenient base64");
    assert_eq!((e.sid, e.keys[0].data.as_slice()), (7, &[0u8, 1, 2, 3][..]));
    // Errors never echo more than a snippet of hostile text.
    let long = "9".repeat(1_000);
    match parse_encrypted(&legacy_encrypted(&format!("sid='{long}'"), key)) {
        Err(Error::InvalidAttribute { value, .. }) => assert!(value.chars().count() <= 41),
        other => panic!("{other:?}"),
    }
}

#[test]
fn building_omemo2_needs_jids() {
    let e = Encrypted {
        ns: Namespace::Omemo2,
        sid: 1,
        keys: vec![KeyFor {
            jid: None,
            rid: 5,
            kex: false,
            data: vec![1],
        }],
        iv: None,
        payload: None,
    };
    assert_eq!(e.to_element(), Err(Error::KeyWithoutJid(5)));
}

#[test]
fn sloppy_device_lists_skip_bad_entries() -> anyhow::Result<()> {
    let list = DeviceList::parse(&xml("<list xmlns='eu.siacs.conversations.axolotl'>\
           <device id='1'/><device id='0'/><device id='-5'/><device id='abc'/>\
           <device id='2147483647'/><device id='2147483648'/><device/><device id='1'/>\
           <device id='12' label='legacy has no labels'/><other id='3'/>\
         </list>")?)?;
    assert_eq!(list.ids().collect::<Vec<_>>(), [1, 0x7FFF_FFFF, 12]);
    assert!(list.devices.iter().all(|d| d.label.is_none()));

    let labels = DeviceList::parse(&xml(&format!(
        "<devices xmlns='urn:xmpp:omemo:2'>\
           <device id='1' label='{}' labelsig='AAAA'/>\
           <device id='2' label='tab&#9;bed' labelsig='AAAA'/>\
           <device id='3' label='ok' labelsig='%%%'/>\
         </devices>",
        "x".repeat(MAX_LABEL_BYTES + 1)
    ))?)?;
    assert_eq!(labels.devices[0].label, None, "too long");
    assert_eq!(labels.devices[1].label, None, "control character");
    assert_eq!(
        (
            labels.devices[2].label.as_deref(),
            &labels.devices[2].labelsig
        ),
        (Some("ok"), &None)
    );

    let many = format!(
        "<devices xmlns='urn:xmpp:omemo:2'>{}</devices>",
        "<device id='x'/>".repeat(MAX_DEVICES + 1)
    );
    assert_eq!(
        DeviceList::parse(&xml(&many)?),
        Err(Error::TooMany {
            element: "device",
            max: MAX_DEVICES
        })
    );
    for wrong in [
        "<devices xmlns='eu.siacs.conversations.axolotl'/>",
        "<list xmlns='urn:xmpp:omemo:2'/>",
        "<devices xmlns='urn:xmpp:omemo:1'/>",
    ] {
        assert!(
            matches!(
                DeviceList::parse(&xml(wrong)?),
                Err(Error::WrongElement { .. })
            ),
            "{wrong}"
        );
    }
    // An empty list is allowed (XEP-0384 v0.9 schema).
    assert!(
        DeviceList::parse(&xml("<devices xmlns='urn:xmpp:omemo:2'/>")?)?
            .devices
            .is_empty()
    );
    Ok(())
}

#[test]
fn sloppy_and_hostile_bundles() -> anyhow::Result<()> {
    let bundle = |spk: &str, extra: &str| {
        format!(
            "<bundle xmlns='urn:xmpp:omemo:2'>{spk}<spks>AAAA</spks><ik>AAAA</ik>\
             <prekeys><pk id='1'>AAAA</pk><pk id='x'>AAAA</pk><pk>AAAA</pk>\
             <pk id='2'>!!</pk><pk id='1'>BBBB</pk><pk id='0'>CCCC</pk>{extra}</prekeys></bundle>"
        )
    };
    let (_, b) = parse_bundle(&xml(&bundle("<spk id='4'>AAAA</spk>", ""))?)?;
    assert_eq!(
        b.prekeys,
        [(1, vec![0, 0, 0]), (0, vec![8, 32, 130])],
        "bad pre-keys skipped, the first of a duplicated id kept, id 0 kept (libsignal)"
    );
    assert_eq!(
        parse_bundle(&xml(&bundle("<spk>AAAA</spk>", ""))?),
        Err(Error::MissingAttribute {
            element: "spk",
            attribute: "id"
        })
    );
    assert_eq!(
        parse_bundle(&xml(&bundle("", ""))?),
        Err(Error::MissingElement {
            parent: "bundle",
            element: "spk"
        })
    );
    assert_eq!(
        parse_bundle(&xml(
            "<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>AAAA</spk><spks>AAAA</spks><prekeys/></bundle>"
        )?),
        Err(Error::MissingElement {
            parent: "bundle",
            element: "ik"
        })
    );
    assert_eq!(
        parse_bundle(&xml(&bundle("<spk id='1'>A=A=</spk>", ""))?),
        Err(Error::InvalidBase64("spk"))
    );
    let many = "<pk id='5'>AAAA</pk>".repeat(MAX_PRE_KEYS);
    assert_eq!(
        parse_bundle(&xml(&bundle("<spk id='1'>AAAA</spk>", &many))?),
        Err(Error::TooMany {
            element: "pk",
            max: MAX_PRE_KEYS
        })
    );
    assert!(matches!(
        parse_bundle(&xml("<bundle xmlns='urn:xmpp:omemo:1'/>")?),
        Err(Error::WrongElement {
            expected: "bundle",
            ..
        })
    ));
    Ok(())
}

#[test]
fn hostile_envelopes() -> anyhow::Result<()> {
    assert!(matches!(
        Envelope::from_bytes(b"<envelope xmlns='urn:xmpp:sce:1'><content>"),
        Err(Error::InvalidXml(_))
    ));
    assert!(matches!(
        Envelope::from_bytes(&[0xff, 0xfe, 0x00]),
        Err(Error::InvalidXml(_))
    ));
    assert!(matches!(
        Envelope::from_bytes(b"<envelope xmlns='urn:xmpp:sce:0'><content/></envelope>"),
        Err(Error::WrongElement {
            expected: "envelope",
            ..
        })
    ));
    assert_eq!(
        Envelope::from_bytes(b"<envelope xmlns='urn:xmpp:sce:1'><rpad/></envelope>"),
        Err(Error::MissingElement {
            parent: "envelope",
            element: "content"
        })
    );
    assert_eq!(
        Envelope::from_bytes(
            b"<envelope xmlns='urn:xmpp:sce:1'><content/><time stamp='yesterday'/></envelope>"
        ),
        Err(Error::InvalidAttribute {
            element: "time",
            attribute: "stamp",
            value: "yesterday".into()
        })
    );
    assert_eq!(
        Envelope::from_bytes(b"<envelope xmlns='urn:xmpp:sce:1'><content/><from/></envelope>"),
        Err(Error::MissingAttribute {
            element: "from",
            attribute: "jid"
        })
    );
    // A DTD (entity expansion) is not XMPP and is refused by the parser.
    assert!(matches!(
        Envelope::from_bytes(
            b"<!DOCTYPE e [<!ENTITY a 'aaaa'>]><envelope xmlns='urn:xmpp:sce:1'><content/></envelope>"
        ),
        Err(Error::InvalidXml(_))
    ));
    // A full JID in an affix is compared as the bare JID it should have been.
    let env = Envelope::from_bytes(
        b"<envelope xmlns='urn:xmpp:sce:1'><content/><from jid='a@b/phone'/></envelope>",
    )?;
    assert_eq!(env.from, Some(jid("a@b")?));
    Ok(())
}

/// Every prefix and every single-byte corruption of a valid message either fails to parse as
/// XML or gives a result — never a panic.
#[test]
fn mangled_input_never_panics() -> anyhow::Result<()> {
    let valid = String::from(
        &Encrypted {
            ns: Namespace::Omemo2,
            sid: 9,
            keys: vec![KeyFor {
                jid: Some(jid("a@b")?),
                rid: 4,
                kex: true,
                data: vec![1, 2, 3],
            }],
            iv: None,
            payload: Some(vec![4, 5, 6]),
        }
        .to_element()?,
    );
    let bytes = valid.as_bytes();
    for i in 0..bytes.len() {
        for variant in [bytes[..i].to_vec(), {
            let mut b = bytes.to_vec();
            b[i] = b"'<>=/ 0x\"&;"[i % 11];
            b
        }] {
            if let Ok(el) = Element::from_reader(variant.as_slice()) {
                let _ = Encrypted::parse(&el);
                let _ = DeviceList::parse(&el);
                let _ = parse_bundle(&el);
                let _ = Envelope::parse(&el);
            }
        }
    }
    Ok(())
}

#[test]
fn an_envelope_nested_too_deep_is_refused_before_it_is_built() {
    // 100,000 levels: building or dropping this tree would overflow the stack.
    let levels = 100_000;
    let mut xml = String::from("<envelope xmlns='urn:xmpp:sce:1'><content>");
    xml.push_str(&"<a>".repeat(levels));
    xml.push_str(&"</a>".repeat(levels));
    xml.push_str("</content></envelope>");
    let err = Envelope::from_bytes(xml.as_bytes()).err();
    assert!(
        matches!(&err, Some(Error::InvalidXml(why)) if why.contains("deeper")),
        "{err:?}"
    );
}

#[test]
fn nesting_is_counted_outside_quotes_comments_and_self_closing_tags() {
    assert!(nesting_within(b"<a><b/><c x='/>'/></a>", 2));
    assert!(!nesting_within(b"<a><b><c/></b></a>", 1));
    // '/>' inside attribute values does not close anything: still 3 deep.
    assert!(!nesting_within(b"<a x='/>'><b y=\"/>\"><c z='/>'>", 2));
    assert!(nesting_within(
        b"<?xml version='1.0'?><!-- note --><a></a>",
        1
    ));
    // Siblings do not add up.
    assert!(nesting_within(&b"<a></a>".repeat(1000), 1));
}
