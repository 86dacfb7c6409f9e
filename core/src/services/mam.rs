//! XEP-0313 Message Archive Management (v1.1, `urn:xmpp:mam:2`): catch-up of our own archive.
//!
//! After every fresh session (not after a resumption) we page forward from the newest archive
//! id we hold until the server says the result set is complete. A new account starts from a
//! bounded window (the account's `first_sync_days`).

use chrono::{DateTime, Utc};
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::mam::{Fin, Query, QueryId};
use xmpp_parsers::rsm::SetQuery;

/// Page size we ask for (the server may cap it lower).
pub const PAGE_SIZE: usize = 250;

/// Where a catch-up starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// After this archive id (what we already hold).
    After(String),
    /// No position yet: everything since this time.
    Since(DateTime<Utc>),
    /// No position yet (a room we just joined): the newest page only.
    Latest,
}

/// The query for one page.
pub fn query(queryid: &str, from: &From) -> Query {
    let mut fields = Vec::new();
    let mut set = SetQuery {
        max: Some(PAGE_SIZE),
        after: None,
        before: None,
        index: None,
    };
    match from {
        From::After(id) => set.after = Some(id.clone()),
        // An empty <before/> asks for the last page (XEP-0059 §2.5).
        From::Latest => set.before = Some(String::new()),
        From::Since(t) => fields.push(Field {
            var: Some("start".into()),
            type_: FieldType::TextSingle,
            label: None,
            required: false,
            desc: None,
            options: Vec::new(),
            values: vec![t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)],
            media: Vec::new(),
            validate: None,
        }),
    }
    Query {
        queryid: Some(QueryId(queryid.to_owned())),
        node: None,
        form: Some(DataForm::new(
            DataFormType::Submit,
            xmpp_parsers::ns::MAM,
            fields,
        )),
        set: Some(set),
        flip_page: false,
    }
}

/// What to do after a page's `<fin/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask for the next page after this id.
    Page(String),
    /// Complete; the newest id seen, if the page had any.
    Done(Option<String>),
}

pub fn after_fin(fin: &Fin) -> Next {
    match (&fin.set.last, fin.complete) {
        (Some(last), false) => Next::Page(last.clone()),
        (last, _) => Next::Done(last.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    #[test]
    fn query_serialises_with_rsm_after() {
        let el = Element::from(query("q1", &From::After("A7".into())));
        let xml = String::from(&el);
        assert!(xml.contains("<after>A7</after>"), "{xml}");
        assert!(xml.contains("queryid='q1'"), "{xml}");
    }

    #[test]
    fn query_since_has_start_field() {
        let t = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").map(|t| t.with_timezone(&Utc));
        let xml = String::from(&Element::from(query(
            "q2",
            &From::Since(t.unwrap_or_default()),
        )));
        assert!(xml.contains("var='start'"), "{xml}");
        assert!(xml.contains("2026-01-01T00:00:00Z"), "{xml}");
    }

    #[test]
    fn xep0313_fin_examples() -> anyhow::Result<()> {
        let el: Element =
            "<fin xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>\
            <first index='0'>28482-98726-73623</first><last>09af3-cc343-b409f</last></set></fin>"
                .parse()?;
        assert_eq!(
            after_fin(&Fin::try_from(el)?),
            Next::Page("09af3-cc343-b409f".into())
        );
        let el: Element = "<fin xmlns='urn:xmpp:mam:2' complete='true'>\
            <set xmlns='http://jabber.org/protocol/rsm'><count>0</count></set></fin>"
            .parse()?;
        assert_eq!(after_fin(&Fin::try_from(el)?), Next::Done(None));
        Ok(())
    }
}
