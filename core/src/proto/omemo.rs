//! XEP-0384: OMEMO Encryption, the XML of both versions Starling speaks — v0.3
//! (`eu.siacs.conversations.axolotl`: Conversations, Dino, Gajim, Monal) and v0.8–0.9
//! (`urn:xmpp:omemo:2`: Kaidan/QXmpp, python-omemo) — with the XEP-0420 (v0.4) Stanza Content
//! Encryption envelope OMEMO 2 encrypts, and the plaintext decorations of an encrypted message
//! (XEP-0380 EME, the XEP-0334 `<store/>` hint, a fallback body marked with XEP-0428).
//!
//! Bytes in, bytes out: key material, payloads and bundles are the bytes
//! [`crate::crypto::omemo`] works on; base64 (standard alphabet, written unwrapped, read with any
//! whitespace and with or without padding) stays in here.
//!
//! Everything parsed here comes from other people's clients and servers: the number of keys,
//! devices and pre-keys and the size of every base64 field are bounded before decoding, and
//! malformed input is refused with a specific [`Error`], never a panic. Device lists skip
//! entries with invalid ids (one bad entry must not make a contact unreachable).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use jid::{BareJid, Jid};
use minidom::Element;
use rand::Rng as _;
use xmpp_parsers::eme::ExplicitMessageEncryption;
use xmpp_parsers::pubsub::PubSub;

use super::n;
use super::pubsub::{self, Opt, RawItem};

/// The two OMEMO versions on the wire.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Namespace {
    /// `eu.siacs.conversations.axolotl`, XEP-0384 v0.3.
    Legacy,
    /// `urn:xmpp:omemo:2`, XEP-0384 ≥ 0.8 with XEP-0420 envelopes.
    Omemo2,
}

impl Namespace {
    /// Both, newest first.
    pub const ALL: [Namespace; 2] = [Namespace::Omemo2, Namespace::Legacy];

    /// The XML namespace.
    pub const fn xmlns(self) -> &'static str {
        match self {
            Namespace::Legacy => "eu.siacs.conversations.axolotl",
            Namespace::Omemo2 => "urn:xmpp:omemo:2",
        }
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Namespace::Legacy => "OMEMO (legacy)",
            Namespace::Omemo2 => "OMEMO 2",
        })
    }
}

/// A bundle as a namespace publishes it (bytes before base64): what
/// [`crate::crypto::omemo::device::Device`] makes of our keys, and what a contact's bundle
/// parses to before the crypto core checks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedBundle {
    /// Identity key.
    pub ik: Vec<u8>,
    /// Signed pre-key id.
    pub spk_id: u32,
    /// Signed pre-key.
    pub spk: Vec<u8>,
    /// Its signature.
    pub spk_sig: Vec<u8>,
    /// One-time pre-keys.
    pub prekeys: Vec<(u32, Vec<u8>)>,
}

// ---------------------------------------------------------------------------------------------
// Namespaces, nodes, limits
// ---------------------------------------------------------------------------------------------

/// Legacy device list node (item id [`CURRENT`]).
pub const LEGACY_DEVICE_LIST_NODE: &str = "eu.siacs.conversations.axolotl.devicelist";
/// Legacy bundles: one node per device, `PREFIX + device id` (item id [`CURRENT`]).
pub const LEGACY_BUNDLES_NODE_PREFIX: &str = "eu.siacs.conversations.axolotl.bundles:";
/// OMEMO 2 device list node (item id [`CURRENT`]).
pub const DEVICES_NODE: &str = "urn:xmpp:omemo:2:devices";
/// OMEMO 2 bundles: one node, one item per device, item id = device id.
pub const BUNDLES_NODE: &str = "urn:xmpp:omemo:2:bundles";
/// The item id of singleton items (XEP-0060 §12.20).
pub const CURRENT: &str = "current";
/// XEP-0420: Stanza Content Encryption.
pub const SCE: &str = "urn:xmpp:sce:1";
const EME: &str = xmpp_parsers::ns::EME;
const JABBER_CLIENT: &str = xmpp_parsers::ns::JABBER_CLIENT;
const SID: &str = xmpp_parsers::ns::SID;
/// XEP-0033: Extended Stanza Addressing (server-processed, never inside an envelope).
const ADDRESS: &str = "http://jabber.org/protocol/address";

/// Device ids are 1..2^31-1 (the positive numbers of a signed 32-bit integer).
pub const MAX_DEVICE_ID: u32 = 0x7FFF_FFFF;
/// Most `<key/>` elements accepted in one `<encrypted/>` (QXmpp's limit per stanza too).
pub const MAX_KEYS: usize = 1000;
/// Most `<device/>` elements accepted in one device list.
pub const MAX_DEVICES: usize = 1000;
/// Most pre-keys accepted in one bundle (XEP-0384 asks for about 100).
pub const MAX_PRE_KEYS: usize = 1000;
/// Largest `<key/>` (a key exchange is about 200 bytes) and largest bundle key or signature.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest `<iv/>` (12 bytes; Conversations < 2.x wrote 16).
pub const MAX_IV_BYTES: usize = 64;
/// Largest `<payload/>`, decoded.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Longest device label kept, in bytes (XEP-0384 recommends under 53 code points; the
/// signature covers the exact label, so longer ones are dropped, never cut).
pub const MAX_LABEL_BYTES: usize = 512;
/// Longest `labelsig` kept, decoded (an Ed25519 signature is 64 bytes).
const MAX_LABEL_SIG_BYTES: usize = 128;
/// Random padding added to an envelope: 0..=RPAD_MAX characters (XEP-0420 §4) on top of the
/// padding that brings short content up to [`RPAD_MIN_CONTENT`].
pub const RPAD_MAX: usize = 200;
/// Content shorter than this (serialised, in bytes) is padded up to it first, so that short
/// messages ("ok", "yes") do not stand out by their length.
pub const RPAD_MIN_CONTENT: usize = 128;
/// Largest difference accepted between an envelope's `<time/>` and when the stanza was sent.
pub const MAX_TIME_SKEW: TimeDelta = TimeDelta::hours(24);

/// The fallback body for clients without OMEMO (our wording; see [`decorations`]).
pub const FALLBACK_BODY: &str = "This message is end-to-end encrypted with OMEMO, and your \
     client cannot decrypt it. Clients that can are listed at https://omemo.top";

/// Base64 as other clients write it: padding optional, non-canonical trailing bits accepted
/// (whitespace is removed beforehand).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

// ---------------------------------------------------------------------------------------------
// Errors and shared helpers
// ---------------------------------------------------------------------------------------------

/// Why an OMEMO element was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Not the element asked for: another name, or not one of OMEMO's namespaces.
    #[error("expected an OMEMO <{expected}/> element, got {found}")]
    WrongElement {
        expected: &'static str,
        found: String,
    },
    /// A required attribute is missing (`sid`, `rid`, an id, a jid).
    #[error("<{element}/> lacks its '{attribute}' attribute")]
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    /// An attribute that does not parse: a non-numeric or out-of-range id, a boolean that is
    /// not `true`/`false`/`1`/`0`, an invalid JID or timestamp.
    #[error("<{element}/> has an invalid '{attribute}' attribute: {value:?}")]
    InvalidAttribute {
        element: &'static str,
        attribute: &'static str,
        value: String,
    },
    /// A required child element is missing.
    #[error("<{parent}/> lacks its <{element}/> child")]
    MissingElement {
        parent: &'static str,
        element: &'static str,
    },
    /// Text that is not base64.
    #[error("<{0}/> is not valid base64")]
    InvalidBase64(&'static str),
    /// A field larger than this client accepts.
    #[error("<{element}/> is larger than the {max} bytes accepted")]
    TooLarge { element: &'static str, max: usize },
    /// More elements of one kind than this client accepts.
    #[error("more than {max} <{element}/> elements")]
    TooMany { element: &'static str, max: usize },
    /// Building an OMEMO 2 element needs every key's recipient JID (`<keys jid='..'>`).
    #[error("OMEMO 2 needs the recipient's JID for the key of device {0}")]
    KeyWithoutJid(u32),
    /// A decrypted envelope that is not well-formed XML.
    #[error("the decrypted envelope is not well-formed XML ({0})")]
    InvalidXml(String),
    /// An envelope affix that contradicts the stanza around it (XEP-0420 §4: reject).
    #[error("the encrypted <{affix}/> says {found}, but the stanza says {expected}")]
    AffixMismatch {
        affix: &'static str,
        expected: String,
        found: String,
    },
    /// An affix the OMEMO profile requires here (`<to/>` in a group chat) is missing.
    #[error("the encrypted envelope has no <{0}/>, which a group chat message must carry")]
    MissingAffix(&'static str),
    /// The envelope's `<time/>` is too far from when the stanza was sent (a replay, or a
    /// clock that is badly off).
    #[error("the encrypted timestamp is {seconds} s away from when the message was sent")]
    TimeSkew { seconds: i64 },
}

/// Results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bounded copy of hostile text for an error message.
fn snippet(s: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

fn invalid(element: &'static str, attribute: &'static str, value: &str) -> Error {
    Error::InvalidAttribute {
        element,
        attribute,
        value: snippet(value),
    }
}

/// The OMEMO namespace an element is in.
fn namespace_of(el: &Element) -> Option<Namespace> {
    Namespace::ALL.into_iter().find(|ns| el.has_ns(ns.xmlns()))
}

/// Checks an element's name and that it is in an OMEMO namespace; returns which.
fn expect(el: &Element, name: &'static str) -> Result<Namespace> {
    namespace_of(el)
        .filter(|_| el.name() == name)
        .ok_or_else(|| wrong(el, name))
}

fn wrong(el: &Element, expected: &'static str) -> Error {
    Error::WrongElement {
        expected,
        found: format!("<{} xmlns='{}'>", snippet(el.name()), snippet(&el.ns())),
    }
}

fn child<'a>(
    el: &'a Element,
    ns: Namespace,
    parent: &'static str,
    name: &'static str,
) -> Result<&'a Element> {
    el.get_child(name, ns.xmlns()).ok_or(Error::MissingElement {
        parent,
        element: name,
    })
}

/// Base64 text (whitespace allowed anywhere) to at most `max` bytes, refusing longer text
/// before decoding it.
fn decode_base64(el: &Element, what: &'static str, max: usize) -> Result<Vec<u8>> {
    let text = el.text();
    decode_base64_str(&text, what, max)
}

fn decode_base64_str(text: &str, what: &'static str, max: usize) -> Result<Vec<u8>> {
    let too_large = Error::TooLarge { element: what, max };
    if text.len() > max.div_ceil(3) * 4 * 2 + 1024 {
        // Far too long even with generous whitespace: do not copy it.
        return Err(too_large);
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > max.div_ceil(3) * 4 {
        return Err(too_large);
    }
    let bytes = LENIENT_BASE64
        .decode(compact.as_bytes())
        .map_err(|_| Error::InvalidBase64(what))?;
    if bytes.len() > max {
        return Err(too_large);
    }
    Ok(bytes)
}

fn encode_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A device id: 1..=[`MAX_DEVICE_ID`].
fn parse_device_id(s: &str) -> Option<u32> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|id| (1..=MAX_DEVICE_ID).contains(id))
}

/// A required device id attribute.
fn device_id_attr(el: &Element, element: &'static str, attribute: &'static str) -> Result<u32> {
    let value = el
        .attr(attribute)
        .ok_or(Error::MissingAttribute { element, attribute })?;
    parse_device_id(value).ok_or_else(|| invalid(element, attribute, value))
}

/// A required key id attribute (pre-key, signed pre-key). Any u32: libsignal (legacy) hands
/// out ids from 0, although XEP-0384 asks for positive ones.
fn key_id_attr(el: &Element, element: &'static str, attribute: &'static str) -> Result<u32> {
    let value = el
        .attr(attribute)
        .ok_or(Error::MissingAttribute { element, attribute })?;
    value
        .trim()
        .parse()
        .map_err(|_| invalid(element, attribute, value))
}

/// An `xs:boolean` attribute, false when absent.
fn bool_attr(el: &Element, element: &'static str, attribute: &'static str) -> Result<bool> {
    match el.attr(attribute).map(str::trim) {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(invalid(element, attribute, other)),
    }
}

/// A JID attribute, reduced to the bare JID (the XEP asks for bare JIDs; a full one is read
/// leniently).
fn bare_jid_attr(el: &Element, element: &'static str) -> Result<BareJid> {
    let value = el.attr("jid").ok_or(Error::MissingAttribute {
        element,
        attribute: "jid",
    })?;
    Jid::new(value.trim())
        .map(|j| j.to_bare())
        .map_err(|_| invalid(element, "jid", value))
}

// ---------------------------------------------------------------------------------------------
// PEP nodes and publish options
// ---------------------------------------------------------------------------------------------

/// The device list node of a namespace.
pub fn device_list_node(ns: Namespace) -> &'static str {
    match ns {
        Namespace::Legacy => LEGACY_DEVICE_LIST_NODE,
        Namespace::Omemo2 => DEVICES_NODE,
    }
}

/// The node holding a device's bundle.
pub fn bundle_node(ns: Namespace, device: u32) -> String {
    match ns {
        Namespace::Legacy => format!("{LEGACY_BUNDLES_NODE_PREFIX}{device}"),
        Namespace::Omemo2 => BUNDLES_NODE.to_owned(),
    }
}

/// The item id of a device's bundle in [`bundle_node`].
pub fn bundle_item_id(ns: Namespace, device: u32) -> String {
    match ns {
        Namespace::Legacy => CURRENT.to_owned(),
        Namespace::Omemo2 => device.to_string(),
    }
}

/// The XEP-0163 `+notify` feature that subscribes to a namespace's device lists.
pub fn notify_feature(ns: Namespace) -> String {
    format!("{}+notify", device_list_node(ns))
}

/// Publish options of the device list node: readable by anyone (XEP-0384 §5.3.1: REQUIRED,
/// so that contacts without a presence subscription and room members can encrypt to us).
pub fn device_list_options(_ns: Namespace) -> Vec<Opt> {
    vec![Opt::one("pubsub#access_model", "open")]
}

/// Publish options of the bundle node. OMEMO 2 keeps every device's bundle as an item of one
/// node, so the node must keep more than one item: `pubsub#max_items` = `max` (XEP-0384
/// §5.3.2). Servers that refuse `max` answer `precondition-not-met`; slixmpp-omemo then
/// retries without it, QXmpp with 1000, 100, 10.
pub fn bundle_options(ns: Namespace) -> Vec<Opt> {
    let mut options = vec![Opt::one("pubsub#access_model", "open")];
    if ns == Namespace::Omemo2 {
        options.push(Opt::one("pubsub#max_items", "max"));
    }
    options
}

/// Publishes our device list (item [`CURRENT`]).
pub fn publish_device_list(list: &DeviceList) -> PubSub {
    pubsub::publish(
        device_list_node(list.ns),
        Some(CURRENT),
        list.to_element(),
        &device_list_options(list.ns),
    )
}

/// Publishes our bundle.
pub fn publish_bundle(ns: Namespace, device: u32, bundle: &PublishedBundle) -> PubSub {
    pubsub::publish(
        &bundle_node(ns, device),
        Some(&bundle_item_id(ns, device)),
        bundle_element(ns, bundle),
        &bundle_options(ns),
    )
}

/// Asks for a contact's device list: the newest item (old Conversations published it under
/// random ids before `current` became the rule).
pub fn request_device_list(ns: Namespace) -> Element {
    pubsub::items(device_list_node(ns), Some(1), None)
}

/// Asks for one device's bundle.
pub fn request_bundle(ns: Namespace, device: u32) -> Element {
    match ns {
        Namespace::Legacy => pubsub::items(&bundle_node(ns, device), Some(1), None),
        Namespace::Omemo2 => Element::from(pubsub::items_by_id(
            BUNDLES_NODE,
            &[&bundle_item_id(ns, device)],
        )),
    }
}

/// What an OMEMO node holds, for routing notifications and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// A device list.
    DeviceList(Namespace),
    /// Bundles: the device for legacy nodes; for OMEMO 2 it is the item id.
    Bundle(Namespace, Option<u32>),
}

impl Node {
    /// Recognises an OMEMO node name.
    pub fn parse(node: &str) -> Option<Node> {
        match node {
            LEGACY_DEVICE_LIST_NODE => Some(Node::DeviceList(Namespace::Legacy)),
            DEVICES_NODE => Some(Node::DeviceList(Namespace::Omemo2)),
            BUNDLES_NODE => Some(Node::Bundle(Namespace::Omemo2, None)),
            _ => node
                .strip_prefix(LEGACY_BUNDLES_NODE_PREFIX)
                .and_then(parse_device_id)
                .map(|id| Node::Bundle(Namespace::Legacy, Some(id))),
        }
    }
}

/// The device list in an items result or notification of [`device_list_node`]: the item
/// `current`, else the last one with a payload; no item is an empty list.
pub fn device_list_from_items(ns: Namespace, items: &[RawItem]) -> Result<DeviceList> {
    let item = items
        .iter()
        .find(|i| i.id.as_deref() == Some(CURRENT) && i.payload.is_some())
        .or_else(|| items.iter().rev().find(|i| i.payload.is_some()));
    let Some(payload) = item.and_then(|i| i.payload.as_ref()) else {
        return Ok(DeviceList::new(ns, []));
    };
    let list = DeviceList::parse(payload)?;
    if list.ns != ns {
        return Err(wrong(payload, list_name(ns)));
    }
    Ok(list)
}

/// The bundle of `device` in an items result or notification of [`bundle_node`].
pub fn bundle_from_items(ns: Namespace, device: u32, items: &[RawItem]) -> Result<PublishedBundle> {
    let id = bundle_item_id(ns, device);
    let item = items
        .iter()
        .find(|i| i.id.as_deref() == Some(id.as_str()) && i.payload.is_some())
        .or_else(|| match ns {
            // Legacy nodes hold one device's bundle, whatever the item is called.
            Namespace::Legacy => items.iter().rev().find(|i| i.payload.is_some()),
            Namespace::Omemo2 => None,
        });
    let payload = item
        .and_then(|i| i.payload.as_ref())
        .ok_or(Error::MissingElement {
            parent: "item",
            element: "bundle",
        })?;
    let (got, bundle) = parse_bundle(payload)?;
    if got != ns {
        return Err(wrong(payload, "bundle"));
    }
    Ok(bundle)
}

// ---------------------------------------------------------------------------------------------
// Device lists
// ---------------------------------------------------------------------------------------------

/// One entry of a device list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    pub id: u32,
    /// OMEMO 2 only: a label as published. Show it only when
    /// [`crate::crypto::omemo::keys::label_verifies`] under the device's identity key.
    pub label: Option<String>,
    /// The label's signature by the device's identity key (kept so that republishing our own
    /// list preserves our other devices' labels).
    pub labelsig: Option<Vec<u8>>,
}

impl DeviceEntry {
    /// A device without a label.
    pub fn new(id: u32) -> Self {
        DeviceEntry {
            id,
            label: None,
            labelsig: None,
        }
    }

    /// A device with a label and its signature (see
    /// [`crate::crypto::omemo::keys::sign_label`]; XEP-0384 v0.9: labels MUST be signed).
    pub fn with_label(id: u32, label: &str, labelsig: Vec<u8>) -> Self {
        DeviceEntry {
            id,
            label: Some(label.to_owned()),
            labelsig: Some(labelsig),
        }
    }
}

/// A device list (`<list/>` legacy, `<devices/>` OMEMO 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList {
    pub ns: Namespace,
    pub devices: Vec<DeviceEntry>,
}

fn list_name(ns: Namespace) -> &'static str {
    match ns {
        Namespace::Legacy => "list",
        Namespace::Omemo2 => "devices",
    }
}

impl DeviceList {
    /// A list of unlabelled devices.
    pub fn new(ns: Namespace, ids: impl IntoIterator<Item = u32>) -> Self {
        DeviceList {
            ns,
            devices: ids.into_iter().map(DeviceEntry::new).collect(),
        }
    }

    /// The device ids.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.devices.iter().map(|d| d.id)
    }

    /// Whether a device is listed.
    pub fn contains(&self, id: u32) -> bool {
        self.devices.iter().any(|d| d.id == id)
    }

    /// Adds or updates an entry (our own device, which must always be listed: XEP-0384 says to
    /// re-announce it whenever our own list comes without it). Returns whether the list
    /// changed and must be republished.
    pub fn ensure(&mut self, entry: DeviceEntry) -> bool {
        match self.devices.iter_mut().find(|d| d.id == entry.id) {
            Some(d) if *d == entry => false,
            Some(d) => {
                *d = entry;
                true
            }
            None => {
                self.devices.push(entry);
                true
            }
        }
    }

    /// Parses a device list of either namespace. Entries with a missing or invalid id are
    /// skipped, duplicates merged; labels are kept only in OMEMO 2, within
    /// [`MAX_LABEL_BYTES`] and without control characters.
    pub fn parse(el: &Element) -> Result<Self> {
        let ns = namespace_of(el).ok_or_else(|| wrong(el, "devices"))?;
        let name = list_name(ns);
        if el.name() != name {
            return Err(wrong(el, name));
        }
        let mut devices: Vec<DeviceEntry> = Vec::new();
        for (n, d) in el
            .children()
            .filter(|c| c.is("device", ns.xmlns()))
            .enumerate()
        {
            if n == MAX_DEVICES {
                return Err(Error::TooMany {
                    element: "device",
                    max: MAX_DEVICES,
                });
            }
            let Some(id) = d.attr("id").and_then(parse_device_id) else {
                tracing::debug!(id = ?d.attr("id").map(snippet), "OMEMO device list: entry skipped");
                continue;
            };
            if devices.iter().any(|e| e.id == id) {
                continue;
            }
            let mut entry = DeviceEntry::new(id);
            if ns == Namespace::Omemo2 {
                entry.label = d
                    .attr("label")
                    .filter(|l| l.len() <= MAX_LABEL_BYTES && !l.chars().any(char::is_control))
                    .map(str::to_owned);
                entry.labelsig = d
                    .attr("labelsig")
                    .and_then(|s| decode_base64_str(s, "device", MAX_LABEL_SIG_BYTES).ok());
            }
            devices.push(entry);
        }
        Ok(DeviceList { ns, devices })
    }

    /// The `<list/>` or `<devices/>` element.
    pub fn to_element(&self) -> Element {
        let xmlns = self.ns.xmlns();
        Element::builder(list_name(self.ns), xmlns)
            .append_all(self.devices.iter().map(|d| {
                let mut b = Element::builder("device", xmlns).attr(n!("id"), d.id.to_string());
                if self.ns == Namespace::Omemo2 {
                    b = b
                        .attr(n!("label"), d.label.as_deref())
                        .attr(n!("labelsig"), d.labelsig.as_deref().map(encode_base64));
                }
                b.build()
            }))
            .build()
    }
}

impl TryFrom<&Element> for DeviceList {
    type Error = Error;
    fn try_from(el: &Element) -> Result<Self> {
        DeviceList::parse(el)
    }
}

impl From<&DeviceList> for Element {
    fn from(list: &DeviceList) -> Element {
        list.to_element()
    }
}

// ---------------------------------------------------------------------------------------------
// Bundles
// ---------------------------------------------------------------------------------------------

/// The element and attribute names of a bundle in one namespace.
struct BundleNames {
    spk: &'static str,
    spk_id: &'static str,
    spks: &'static str,
    ik: &'static str,
    pk: &'static str,
    pk_id: &'static str,
}

const fn bundle_names(ns: Namespace) -> BundleNames {
    match ns {
        Namespace::Legacy => BundleNames {
            spk: "signedPreKeyPublic",
            spk_id: "signedPreKeyId",
            spks: "signedPreKeySignature",
            ik: "identityKey",
            pk: "preKeyPublic",
            pk_id: "preKeyId",
        },
        Namespace::Omemo2 => BundleNames {
            spk: "spk",
            spk_id: "id",
            spks: "spks",
            ik: "ik",
            pk: "pk",
            pk_id: "id",
        },
    }
}

/// Parses a `<bundle/>` of either namespace into its bytes. Pre-keys with a missing or
/// invalid id, or whose key is not base64, are skipped (as [`crate::crypto::omemo::keys::Bundle`]
/// skips keys that do not decode); the keys themselves are checked when the bundle is decoded.
pub fn parse_bundle(el: &Element) -> Result<(Namespace, PublishedBundle)> {
    let ns = expect(el, "bundle")?;
    let names = bundle_names(ns);
    let field = |name: &'static str| -> Result<Vec<u8>> {
        decode_base64(child(el, ns, "bundle", name)?, name, MAX_KEY_BYTES)
    };
    let spk_el = child(el, ns, "bundle", names.spk)?;
    let spk_id = key_id_attr(spk_el, names.spk, names.spk_id)?;
    let spk = decode_base64(spk_el, names.spk, MAX_KEY_BYTES)?;
    let spk_sig = field(names.spks)?;
    let ik = field(names.ik)?;
    let mut prekeys: Vec<(u32, Vec<u8>)> = Vec::new();
    for (n, pk) in child(el, ns, "bundle", "prekeys")?
        .children()
        .filter(|c| c.is(names.pk, ns.xmlns()))
        .enumerate()
    {
        if n == MAX_PRE_KEYS {
            return Err(Error::TooMany {
                element: names.pk,
                max: MAX_PRE_KEYS,
            });
        }
        let key = key_id_attr(pk, names.pk, names.pk_id)
            .and_then(|id| Ok((id, decode_base64(pk, names.pk, MAX_KEY_BYTES)?)));
        match key {
            Ok((id, _)) if prekeys.iter().any(|(i, _)| *i == id) => {}
            Ok(key) => prekeys.push(key),
            Err(e) => tracing::debug!(error = %e, "OMEMO bundle: pre-key skipped"),
        }
    }
    Ok((
        ns,
        PublishedBundle {
            ik,
            spk_id,
            spk,
            spk_sig,
            prekeys,
        },
    ))
}

/// The `<bundle/>` element of a namespace.
pub fn bundle_element(ns: Namespace, bundle: &PublishedBundle) -> Element {
    let xmlns = ns.xmlns();
    let names = bundle_names(ns);
    let text = |name: &str, bytes: &[u8]| {
        Element::builder(name, xmlns)
            .append(encode_base64(bytes))
            .build()
    };
    let spk = Element::builder(names.spk, xmlns)
        .attr(n_attr(names.spk_id), bundle.spk_id.to_string())
        .append(encode_base64(&bundle.spk))
        .build();
    let prekeys = Element::builder("prekeys", xmlns)
        .append_all(bundle.prekeys.iter().map(|(id, key)| {
            Element::builder(names.pk, xmlns)
                .attr(n_attr(names.pk_id), id.to_string())
                .append(encode_base64(key))
                .build()
        }))
        .build();
    Element::builder("bundle", xmlns)
        .append(spk)
        .append(text(names.spks, &bundle.spk_sig))
        .append(text(names.ik, &bundle.ik))
        .append(prekeys)
        .build()
}

/// An attribute name chosen at run time among the compile-time checked ones above.
fn n_attr(name: &'static str) -> minidom::rxml::NcName {
    match name {
        "signedPreKeyId" => n!("signedPreKeyId"),
        "preKeyId" => n!("preKeyId"),
        _ => n!("id"),
    }
}

// ---------------------------------------------------------------------------------------------
// Encrypted messages
// ---------------------------------------------------------------------------------------------

/// One `<key/>`: the payload key material encrypted for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFor {
    /// The recipient's bare JID (OMEMO 2's `<keys jid='..'>`; `None` in legacy messages).
    pub jid: Option<BareJid>,
    /// The recipient device.
    pub rid: u32,
    /// A key exchange (`prekey='true'` legacy, `kex='true'` OMEMO 2).
    pub kex: bool,
    /// The ratchet message bytes.
    pub data: Vec<u8>,
}

/// An `<encrypted/>` element of either namespace. Without a payload it is a key transport /
/// empty message (heartbeat, session completion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    pub ns: Namespace,
    /// The sender's device id.
    pub sid: u32,
    pub keys: Vec<KeyFor>,
    /// Legacy only: the payload's IV.
    pub iv: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
}

impl Encrypted {
    /// The key for our device. OMEMO 2 keys must also be addressed to our bare JID (XEP-0384
    /// §6: a `<keys/>` with our JID holding a `<key/>` with our device id); legacy messages
    /// carry no JIDs.
    pub fn key_for(&self, own_jid: &BareJid, own_device: u32) -> Option<&KeyFor> {
        self.keys.iter().find(|k| {
            k.rid == own_device
                && match self.ns {
                    Namespace::Legacy => true,
                    Namespace::Omemo2 => k.jid.as_ref() == Some(own_jid),
                }
        })
    }

    /// Whether this carries no payload (key transport, heartbeat).
    pub fn is_empty(&self) -> bool {
        self.payload.is_none()
    }

    /// Finds and parses the `<encrypted/>` child of a `<message/>`, preferring OMEMO 2 when a
    /// message carries both.
    pub fn find(message: &Element) -> Option<Result<Encrypted>> {
        Namespace::ALL
            .into_iter()
            .find_map(|ns| message.get_child("encrypted", ns.xmlns()))
            .map(Encrypted::parse)
    }

    /// Parses an `<encrypted/>` of either namespace.
    pub fn parse(el: &Element) -> Result<Self> {
        let ns = expect(el, "encrypted")?;
        let xmlns = ns.xmlns();
        let header = child(el, ns, "encrypted", "header")?;
        let sid = device_id_attr(header, "header", "sid")?;
        let kex_attr = match ns {
            Namespace::Legacy => "prekey",
            Namespace::Omemo2 => "kex",
        };
        let mut keys = Vec::new();
        let mut add = |jid: Option<&BareJid>, key: &Element| -> Result<()> {
            if keys.len() == MAX_KEYS {
                return Err(Error::TooMany {
                    element: "key",
                    max: MAX_KEYS,
                });
            }
            keys.push(KeyFor {
                jid: jid.cloned(),
                rid: device_id_attr(key, "key", "rid")?,
                kex: bool_attr(key, "key", kex_attr)?,
                data: decode_base64(key, "key", MAX_KEY_BYTES)?,
            });
            Ok(())
        };
        match ns {
            Namespace::Legacy => {
                for key in header.children().filter(|c| c.is("key", xmlns)) {
                    add(None, key)?;
                }
            }
            Namespace::Omemo2 => {
                for group in header.children().filter(|c| c.is("keys", xmlns)) {
                    let jid = bare_jid_attr(group, "keys")?;
                    for key in group.children().filter(|c| c.is("key", xmlns)) {
                        add(Some(&jid), key)?;
                    }
                }
            }
        }
        let iv = match ns {
            Namespace::Legacy => header
                .get_child("iv", xmlns)
                .map(|iv| decode_base64(iv, "iv", MAX_IV_BYTES))
                .transpose()?,
            Namespace::Omemo2 => None,
        };
        let payload = el
            .get_child("payload", xmlns)
            .map(|p| decode_base64(p, "payload", MAX_PAYLOAD_BYTES))
            .transpose()?;
        if ns == Namespace::Legacy && payload.is_some() && iv.is_none() {
            return Err(Error::MissingElement {
                parent: "header",
                element: "iv",
            });
        }
        Ok(Encrypted {
            ns,
            sid,
            keys,
            iv,
            payload,
        })
    }

    /// The `<encrypted/>` element. OMEMO 2 groups the keys by recipient JID, in the order the
    /// JIDs first appear; every key needs one ([`Error::KeyWithoutJid`]).
    pub fn to_element(&self) -> Result<Element> {
        let xmlns = self.ns.xmlns();
        let key = |k: &KeyFor| {
            let flag = match self.ns {
                Namespace::Legacy => n!("prekey"),
                Namespace::Omemo2 => n!("kex"),
            };
            Element::builder("key", xmlns)
                .attr(n!("rid"), k.rid.to_string())
                .attr(flag, k.kex.then_some("true"))
                .append(encode_base64(&k.data))
                .build()
        };
        let mut header = Element::builder("header", xmlns)
            .attr(n!("sid"), self.sid.to_string())
            .build();
        match self.ns {
            Namespace::Legacy => {
                for k in &self.keys {
                    header.append_child(key(k));
                }
                if let Some(iv) = &self.iv {
                    header.append_child(
                        Element::builder("iv", xmlns)
                            .append(encode_base64(iv))
                            .build(),
                    );
                }
            }
            Namespace::Omemo2 => {
                let mut jids: Vec<&BareJid> = Vec::new();
                for k in &self.keys {
                    let jid = k.jid.as_ref().ok_or(Error::KeyWithoutJid(k.rid))?;
                    if !jids.contains(&jid) {
                        jids.push(jid);
                    }
                }
                for jid in jids {
                    header.append_child(
                        Element::builder("keys", xmlns)
                            .attr(n!("jid"), jid.as_str())
                            .append_all(
                                self.keys
                                    .iter()
                                    .filter(|k| k.jid.as_ref() == Some(jid))
                                    .map(key),
                            )
                            .build(),
                    );
                }
            }
        }
        let mut el = Element::builder("encrypted", xmlns).append(header).build();
        if let Some(payload) = &self.payload {
            el.append_child(
                Element::builder("payload", xmlns)
                    .append(encode_base64(payload))
                    .build(),
            );
        }
        Ok(el)
    }
}

impl TryFrom<&Element> for Encrypted {
    type Error = Error;
    fn try_from(el: &Element) -> Result<Self> {
        Encrypted::parse(el)
    }
}

// ---------------------------------------------------------------------------------------------
// Message decorations
// ---------------------------------------------------------------------------------------------

/// The XEP-0380 `<encryption/>` element. XEP-0380 says the `name` SHOULD be left out for
/// namespaces in its table (both are), but Conversations sends `name='OMEMO'` and clients that
/// predate the table's OMEMO 2 entry only have the name to show.
pub fn eme(ns: Namespace) -> Element {
    Element::from(ExplicitMessageEncryption {
        namespace: ns.xmlns().to_owned(),
        name: Some(
            match ns {
                Namespace::Legacy => "OMEMO",
                Namespace::Omemo2 => "OMEMO 2",
            }
            .to_owned(),
        ),
    })
}

/// The XEP-0334 `<store/>` hint: without a (real) body, servers would not archive the
/// message for our offline devices.
pub fn store_hint() -> Element {
    Element::builder("store", super::ns::HINTS).build()
}

/// The plaintext children to add to a `<message/>` carrying an `<encrypted/>` with a payload:
/// EME, a fallback body ([`FALLBACK_BODY`]) marked as a fallback for the OMEMO namespace
/// (XEP-0428), and the `<store/>` hint. Conversations and Dino send the same for legacy
/// OMEMO (without the XEP-0428 marker); for OMEMO 2 XEP-0420 says not to add a body, but
/// XEP-0380 asks for one and QXmpp (Kaidan) sends one with the same XEP-0428 marker — without
/// it, clients that only know legacy OMEMO show nothing at all.
pub fn decorations(ns: Namespace) -> Vec<Element> {
    vec![
        eme(ns),
        Element::builder("body", JABBER_CLIENT)
            .append(FALLBACK_BODY)
            .build(),
        Element::builder("fallback", super::ns::FALLBACK)
            .attr(n!("for"), ns.xmlns())
            .append(Element::builder("body", super::ns::FALLBACK).build())
            .build(),
        store_hint(),
    ]
}

/// The plaintext children of an empty OMEMO message (key transport, heartbeat): only the
/// `<store/>` hint, so that offline devices still receive it.
pub fn empty_message_decorations() -> Vec<Element> {
    vec![store_hint()]
}

// ---------------------------------------------------------------------------------------------
// XEP-0420 envelopes (OMEMO 2)
// ---------------------------------------------------------------------------------------------

/// An XEP-0420 `<envelope/>`: what OMEMO 2 encrypts. The OMEMO profile (XEP-0384 §6.1):
/// `<rpad/>` MUST be present, `<time/>` MAY, `<from/>` SHOULD, and `<to/>` MUST be there in
/// group chats.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The protected elements (`<body xmlns='jabber:client'/>`, OOB, corrections, ...).
    pub content: Vec<Element>,
    pub rpad: Option<String>,
    pub time: Option<DateTime<Utc>>,
    /// The stanza's recipient, bare (the room for group chats).
    pub to: Option<BareJid>,
    /// The sender, bare (the real JID in group chats).
    pub from: Option<BareJid>,
}

/// Random padding: short content is first padded up to [`RPAD_MIN_CONTENT`], then 0 to
/// [`RPAD_MAX`] random characters are added (XEP-0420 §4).
pub fn random_rpad(content_len: usize) -> String {
    let mut rng = rand::rng();
    let len = RPAD_MIN_CONTENT.saturating_sub(content_len) + rng.random_range(0..=RPAD_MAX);
    (&mut rng)
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Elements that XEP-0420 §8 says must never be taken from inside an envelope: server-
/// processed ones (hints, stanza-ids, extended addressing, EME) and nested envelopes.
fn server_processed(el: &Element) -> bool {
    el.has_ns(super::ns::HINTS)
        || el.is("stanza-id", SID)
        || el.has_ns(ADDRESS)
        || el.has_ns(EME)
        || el.is("envelope", SCE)
}

/// How deep a decrypted XEP-0420 envelope may nest (a real one is 3 or 4 levels).
pub const MAX_ENVELOPE_DEPTH: usize = 32;

/// Whether XML `bytes` nest no deeper than `max` elements, by a scan that needs no tree:
/// tags are counted outside quoted attribute values, `<?…>` and `<!…>` are skipped.
/// Malformed input may be counted loosely, but never as shallower than it would parse.
pub fn nesting_within(bytes: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if b != b'<' {
            continue;
        }
        let kind = bytes.get(i).copied();
        let mut quote = None;
        let mut prev = b'<';
        // To the end of the tag, outside quotes.
        while let Some(&c) = bytes.get(i) {
            i += 1;
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c == b'>' => break,
                None => {}
            }
            if quote.is_none() && !c.is_ascii_whitespace() {
                prev = c;
            }
        }
        match kind {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(b'?') | Some(b'!') => {}
            _ if prev == b'/' => {}
            _ => {
                depth += 1;
                if depth > max {
                    return false;
                }
            }
        }
    }
    true
}

impl Envelope {
    /// An envelope for `content` from `from` to `to` (bare JIDs; the room for group chats),
    /// stamped `time`, with random padding.
    pub fn new(content: Vec<Element>, from: BareJid, to: BareJid, time: DateTime<Utc>) -> Self {
        let len = content.iter().map(|c| String::from(c).len()).sum();
        Envelope {
            content,
            rpad: Some(random_rpad(len)),
            time: Some(time),
            to: Some(to),
            from: Some(from),
        }
    }

    /// A message envelope with just a body.
    pub fn with_body(text: &str, from: BareJid, to: BareJid, time: DateTime<Utc>) -> Self {
        let body = Element::builder("body", JABBER_CLIENT).append(text).build();
        Envelope::new(vec![body], from, to, time)
    }

    /// The text of the first `<body xmlns='jabber:client'/>` in the content.
    pub fn body(&self) -> Option<String> {
        self.content
            .iter()
            .find(|c| c.is("body", JABBER_CLIENT))
            .map(Element::text)
    }

    /// The `<envelope/>` element.
    pub fn to_element(&self) -> Element {
        let mut el = Element::builder("envelope", SCE)
            .append(
                Element::builder("content", SCE)
                    .append_all(self.content.iter().cloned())
                    .build(),
            )
            .build();
        if let Some(rpad) = &self.rpad {
            el.append_child(Element::builder("rpad", SCE).append(rpad.as_str()).build());
        }
        if let Some(time) = &self.time {
            el.append_child(
                Element::builder("time", SCE)
                    .attr(
                        n!("stamp"),
                        time.to_rfc3339_opts(SecondsFormat::Millis, true),
                    )
                    .build(),
            );
        }
        for (name, jid) in [("to", &self.to), ("from", &self.from)] {
            if let Some(jid) = jid {
                el.append_child(
                    Element::builder(name, SCE)
                        .attr(n!("jid"), jid.as_str())
                        .build(),
                );
            }
        }
        el
    }

    /// The serialised envelope: what [`crate::crypto::omemo::payload::seal`] encrypts.
    pub fn to_bytes(&self) -> Vec<u8> {
        String::from(&self.to_element()).into_bytes()
    }

    /// Parses a decrypted payload. Whoever can encrypt to us chose these bytes, and
    /// minidom builds (and drops) the tree recursively: nesting deeper than
    /// [`MAX_ENVELOPE_DEPTH`] is refused before that.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if !nesting_within(bytes, MAX_ENVELOPE_DEPTH) {
            return Err(Error::InvalidXml(format!(
                "the envelope nests deeper than {MAX_ENVELOPE_DEPTH} levels"
            )));
        }
        let el =
            Element::from_reader(bytes).map_err(|e| Error::InvalidXml(snippet(&e.to_string())))?;
        Envelope::parse(&el)
    }

    /// Parses an `<envelope/>`. Server-processed elements inside `<content/>` are dropped
    /// (XEP-0420 §8); a `<body/>` that inherited the envelope's namespace is read as the
    /// `jabber:client` body it was meant to be. The first of each affix counts.
    pub fn parse(el: &Element) -> Result<Self> {
        if !el.is("envelope", SCE) {
            return Err(Error::WrongElement {
                expected: "envelope",
                found: format!("<{} xmlns='{}'>", snippet(el.name()), snippet(&el.ns())),
            });
        }
        let content = el.get_child("content", SCE).ok_or(Error::MissingElement {
            parent: "envelope",
            element: "content",
        })?;
        let content = content
            .children()
            .filter(|c| {
                let drop = server_processed(c);
                if drop {
                    tracing::debug!(name = c.name(), ns = %c.ns(), "SCE: server-processed element dropped");
                }
                !drop
            })
            .map(|c| {
                if c.is("body", SCE) {
                    Element::builder("body", JABBER_CLIENT)
                        .append(c.text())
                        .build()
                } else {
                    c.clone()
                }
            })
            .collect();
        let affix = |name: &str| el.get_child(name, SCE);
        let time = affix("time")
            .map(|t| {
                let stamp = t.attr("stamp").ok_or(Error::MissingAttribute {
                    element: "time",
                    attribute: "stamp",
                })?;
                DateTime::parse_from_rfc3339(stamp.trim())
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|_| invalid("time", "stamp", stamp))
            })
            .transpose()?;
        Ok(Envelope {
            content,
            rpad: affix("rpad").map(Element::text),
            time,
            to: affix("to").map(|t| bare_jid_attr(t, "to")).transpose()?,
            from: affix("from")
                .map(|f| bare_jid_attr(f, "from"))
                .transpose()?,
        })
    }

    /// Checks the affixes against the stanza that carried the envelope (XEP-0420 §4: a
    /// mismatch is rejected): `<from/>` against the sender's bare JID (for group chats the
    /// occupant's real JID), `<to/>` against the stanza's recipient (for group chats the room;
    /// it must be present there, so that the server cannot turn a group message into a private
    /// one or back), `<time/>` within [`MAX_TIME_SKEW`] of when the stanza was sent (its
    /// XEP-0203 delay, else the time of receipt). A missing `<from/>` is accepted, as the OMEMO
    /// profile only says SHOULD.
    pub fn check(&self, stanza: &StanzaInfo<'_>) -> Result<()> {
        if let Some(from) = &self.from
            && from != stanza.from
        {
            return Err(Error::AffixMismatch {
                affix: "from",
                expected: stanza.from.to_string(),
                found: from.to_string(),
            });
        }
        match &self.to {
            Some(to) if to != stanza.to => {
                return Err(Error::AffixMismatch {
                    affix: "to",
                    expected: stanza.to.to_string(),
                    found: to.to_string(),
                });
            }
            None if stanza.groupchat => return Err(Error::MissingAffix("to")),
            _ => {}
        }
        if let (Some(time), Some(sent)) = (self.time, stanza.sent) {
            let skew = time - sent;
            if skew.abs() > MAX_TIME_SKEW {
                return Err(Error::TimeSkew {
                    seconds: skew.num_seconds(),
                });
            }
        }
        Ok(())
    }
}

/// What the stanza around an envelope says, for [`Envelope::check`].
#[derive(Debug, Clone, Copy)]
pub struct StanzaInfo<'a> {
    /// The sender's bare JID; in a group chat the occupant's real JID.
    pub from: &'a BareJid,
    /// The recipient's bare JID (our own for a message without `to`); in a group chat the
    /// room.
    pub to: &'a BareJid,
    /// A `type='groupchat'` message.
    pub groupchat: bool,
    /// When it was sent (XEP-0203 delay, else when it arrived); `None` skips the time check.
    pub sent: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests;
