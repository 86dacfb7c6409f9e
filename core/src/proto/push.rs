//! Push (issue 9): XEP-0357 Push Notifications as the client enables them on its server,
//! and Starling's own registration with a push gateway (the XEP-0357 "app server"), which
//! turns the server's publishes into content-free UnifiedPush wakeups.
//!
//! Registration (namespace [`NS_GATEWAY`]): the client sends the gateway
//! `<register xmlns='urn:xmpp:starling:push:0' endpoint='https://…'/>` (its UnifiedPush
//! endpoint) and gets `<registered node='…' secret='…'/>`, which it then enables on its own
//! server (XEP-0357 `<enable/>` with the secret as a publish option); `<unregister
//! node='…'/>` forgets it.

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field};
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::push::{Disable, Enable};

use super::n;

/// Starling's push gateway registration protocol.
pub const NS_GATEWAY: &str = "urn:xmpp:starling:push:0";
/// XEP-0357.
pub const NS_PUSH: &str = "urn:xmpp:push:0";
/// XEP-0060 publish options, as XEP-0357 uses them for the app server's secret.
pub const NS_PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
/// XEP-0060.
pub const NS_PUBSUB: &str = "http://jabber.org/protocol/pubsub";
/// The longest endpoint, node or secret accepted.
pub const MAX_VALUE: usize = 2048;

/// What a gateway gave a client to enable on its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub node: String,
    pub secret: String,
}

/// Why a registration answer or request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("not a push gateway answer: {0}")]
    Malformed(&'static str),
    #[error("the push endpoint must be an https URL")]
    NotHttps,
}

/// XEP-0357 `<enable/>` for the gateway `service`'s `node`, with its secret.
pub fn enable(service: &BareJid, node: &str, secret: &str) -> Element {
    let form = DataForm::new(
        DataFormType::Submit,
        NS_PUBLISH_OPTIONS,
        vec![Field::text_single("secret", secret)],
    );
    Enable {
        jid: service.clone(),
        node: Some(node.to_owned()),
        form: Some(form),
    }
    .into()
}

/// XEP-0357 `<disable/>` for the gateway `service`'s `node`.
pub fn disable(service: &BareJid, node: &str) -> Element {
    Disable {
        jid: service.clone(),
        node: Some(node.to_owned()),
    }
    .into()
}

/// The registration request for a UnifiedPush `endpoint`.
pub fn register(endpoint: &str) -> Element {
    Element::builder("register", NS_GATEWAY)
        .attr(n!("endpoint"), endpoint)
        .build()
}

/// Forgets the registration of `node`.
pub fn unregister(node: &str) -> Element {
    Element::builder("unregister", NS_GATEWAY)
        .attr(n!("node"), node)
        .build()
}

/// The gateway's answer to [`register`] (what it answers with, [`registered`]).
pub fn parse_registered(el: &Element) -> Result<Registration, PushError> {
    if !el.is("registered", NS_GATEWAY) {
        return Err(PushError::Malformed("no <registered/>"));
    }
    let value = |name: &str| {
        el.attr(name)
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_VALUE)
            .map(str::to_owned)
    };
    Ok(Registration {
        node: value("node").ok_or(PushError::Malformed("no node"))?,
        secret: value("secret").ok_or(PushError::Malformed("no secret"))?,
    })
}

/// The gateway's answer to a registration.
pub fn registered(r: &Registration) -> Element {
    Element::builder("registered", NS_GATEWAY)
        .attr(n!("node"), r.node.as_str())
        .attr(n!("secret"), r.secret.as_str())
        .build()
}

/// What a client asks a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayRequest {
    Register { endpoint: String },
    Unregister { node: String },
}

/// A registration request as the gateway reads it: an https endpoint, or a node to forget.
pub fn parse_request(el: &Element) -> Result<GatewayRequest, PushError> {
    let attr = |name: &str| {
        el.attr(name)
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= MAX_VALUE)
            .map(str::to_owned)
    };
    if el.is("register", NS_GATEWAY) {
        let endpoint = attr("endpoint").ok_or(PushError::Malformed("no endpoint"))?;
        let https = endpoint
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        if !https {
            return Err(PushError::NotHttps);
        }
        return Ok(GatewayRequest::Register { endpoint });
    }
    if el.is("unregister", NS_GATEWAY) {
        return Ok(GatewayRequest::Unregister {
            node: attr("node").ok_or(PushError::Malformed("no node"))?,
        });
    }
    Err(PushError::Malformed("not a registration request"))
}

/// A server's XEP-0357 publish as the gateway reads it: the node, and the secret from the
/// publish options (the notification's content is never looked at).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub node: String,
    pub secret: Option<String>,
}

/// Reads `<pubsub><publish node='…'>…</publish><publish-options>…</publish-options></pubsub>`.
pub fn parse_publish(pubsub: &Element) -> Option<Publish> {
    if !pubsub.is("pubsub", NS_PUBSUB) {
        return None;
    }
    let publish = pubsub.get_child("publish", NS_PUBSUB)?;
    let node = publish
        .attr("node")
        .filter(|n| !n.is_empty() && n.len() <= MAX_VALUE)?
        .to_owned();
    let secret = pubsub
        .get_child("publish-options", NS_PUBSUB)
        .and_then(|o| o.get_child("x", "jabber:x:data"))
        .and_then(|x| DataForm::try_from(x.clone()).ok())
        .filter(|f| f.form_type() == Some(NS_PUBLISH_OPTIONS))
        .and_then(|f| {
            f.fields
                .into_iter()
                .find(|field| field.var.as_deref() == Some("secret"))
                .and_then(|field| field.values.into_iter().next())
        });
    Some(Publish { node, secret })
}

/// Whether a disco#info answer (XEP-0030) is a Starling push gateway: a push service
/// (XEP-0357's `pubsub/push` identity) that takes registrations in [`NS_GATEWAY`].
pub fn is_gateway(info: &xmpp_parsers::disco::DiscoInfoResult) -> bool {
    info.identities
        .iter()
        .any(|i| i.category == "pubsub" && i.type_ == "push")
        && info.features.iter().any(|f| f == NS_GATEWAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_is_a_push_service_taking_our_registrations() -> anyhow::Result<()> {
        let info = |identity: &str, feature: &str| -> anyhow::Result<_> {
            let el: Element = format!(
                "<query xmlns='http://jabber.org/protocol/disco#info'>{identity}\
                 <feature var='{feature}'/></query>"
            )
            .parse()?;
            Ok(xmpp_parsers::disco::DiscoInfoResult::try_from(el)?)
        };
        let push = "<identity category='pubsub' type='push'/>";
        assert!(is_gateway(&info(push, NS_GATEWAY)?));
        // Another app server (no Starling registrations), or not a push service at all.
        assert!(!is_gateway(&info(push, NS_PUSH)?));
        assert!(!is_gateway(&info(
            "<identity category='pubsub' type='service'/>",
            NS_GATEWAY
        )?));
        Ok(())
    }

    #[test]
    fn enable_carries_the_secret_as_a_publish_option() -> anyhow::Result<()> {
        let service = BareJid::new("push.example.org")?;
        let el = enable(&service, "n1", "s3cret");
        let text = String::from(&el);
        assert!(
            text.contains("urn:xmpp:push:0") && text.contains("s3cret"),
            "{text}"
        );
        let back = Enable::try_from(el)?;
        assert_eq!(back.node.as_deref(), Some("n1"));
        assert_eq!(
            back.form.and_then(|f| f.form_type().map(str::to_owned)),
            Some(NS_PUBLISH_OPTIONS.to_owned())
        );
        assert!(String::from(&disable(&service, "n1")).contains("disable"));
        Ok(())
    }

    #[test]
    fn registration_round_trip_and_refusals() -> anyhow::Result<()> {
        let req = register("https://ntfy.example/up/abc");
        assert_eq!(
            parse_request(&req),
            Ok(GatewayRequest::Register {
                endpoint: "https://ntfy.example/up/abc".into()
            })
        );
        assert_eq!(
            parse_request(&register("http://plain.example/up")),
            Err(PushError::NotHttps)
        );
        assert_eq!(
            parse_request(&unregister("n1")),
            Ok(GatewayRequest::Unregister { node: "n1".into() })
        );
        let r = Registration {
            node: "n1".into(),
            secret: "s".into(),
        };
        assert_eq!(parse_registered(&registered(&r)), Ok(r));
        let bad: Element = "<registered xmlns='urn:xmpp:starling:push:0' node='n'/>".parse()?;
        assert!(parse_registered(&bad).is_err());
        Ok(())
    }

    /// XEP-0357 Example 9 (the server's publish to the app server), as Prosody sends it.
    #[test]
    fn a_servers_publish() -> anyhow::Result<()> {
        let el: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>
            <publish node='yxs32uqsflafdk3iuqo'>
              <item><notification xmlns='urn:xmpp:push:0'>
                <x xmlns='jabber:x:data'>
                  <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>
                  <field var='message-count'><value>1</value></field>
                  <field var='last-message-sender'><value>juliet@capulet.example/balcony</value></field>
                  <field var='last-message-body'><value>Wherefore art thou, Romeo?</value></field>
                </x></notification></item>
            </publish>
            <publish-options><x xmlns='jabber:x:data' type='submit'>
              <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
              <field var='secret'><value>eruio234vzxc2kla-91</value></field>
            </x></publish-options>
          </pubsub>"
            .parse()?;
        assert_eq!(
            parse_publish(&el),
            Some(Publish {
                node: "yxs32uqsflafdk3iuqo".into(),
                secret: Some("eruio234vzxc2kla-91".into())
            })
        );
        let no_secret: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>
            <publish node='n'/></pubsub>"
            .parse()?;
        assert_eq!(parse_publish(&no_secret).and_then(|p| p.secret), None);
        Ok(())
    }
}
