//! `KeysAdapter`: a contact's encryption keys (from the chat header) — our own fingerprint
//! with the QR code others scan, their OMEMO devices with fingerprint and trust, and
//! verifying or distrusting one; and OTR with them: starting and ending it, its keys, and
//! verifying each other with a shared secret (the contact's question opens this view).
//! Also publishes our keys when an account comes online.

use std::rc::Rc;

use slint::{ComponentHandle as _, Image, Rgb8Pixel, SharedPixelBuffer};
use starling_core::crypto::otr::OtrStatus;
use starling_core::store::omemo::Trust;

use super::{model, s};
use crate::ui::controllers::encryption::{self, KeyRow, Qr};
use crate::ui::{AppWindow, KeyItem, KeyTrust, KeysAdapter, Ui, background};

/// The keys view's own state.
#[derive(Default)]
pub struct Keys {
    /// Whose keys show: (account, contact).
    showing: Option<(String, String)>,
    /// Bumped by every load, so that an older answer never replaces a newer one.
    generation: u64,
}

pub(super) fn install(ui: &Rc<Ui>, w: &AppWindow) {
    let g = w.global::<KeysAdapter>();
    let u = ui.clone();
    g.on_show(move |account, jid| show(&u, account.into(), jid.into()));
    let u = ui.clone();
    g.on_refresh(move || load(&u));
    let u = ui.clone();
    g.on_verify(move |key| set_trust(&u, key.into(), Trust::Verified));
    let u = ui.clone();
    g.on_distrust(move |key| set_trust(&u, key.into(), Trust::Untrusted));
    let u = ui.clone();
    g.on_otr_start(move || otr_step(&u, OtrStep::Start));
    let u = ui.clone();
    g.on_otr_end(move || otr_step(&u, OtrStep::End));
    let u = ui.clone();
    g.on_otr_verify(move |question, secret| {
        otr_step(&u, OtrStep::Ask(question.into(), secret.into()));
    });
    let u = ui.clone();
    g.on_otr_answer(move |secret| otr_step(&u, OtrStep::Answer(secret.into())));
    let u = ui.clone();
    g.on_otr_decline(move || otr_step(&u, OtrStep::Decline));
}

/// Publishes our OMEMO device and keys (after each fresh connection), so that others can
/// encrypt to us. Failures are logged: encryption to us waits for the next connection.
pub(super) fn publish_own(ui: &Ui, account: &str) {
    let (client, account) = (ui.client.clone(), account.to_owned());
    ui.rt.spawn(async move {
        match client.omemo_publish(&account).await {
            Ok(()) => tracing::debug!(account, "OMEMO keys published"),
            Err(e) => tracing::warn!(account, error = %e, "could not publish our OMEMO keys"),
        }
    });
}

fn showing(ui: &Ui) -> Option<(String, String)> {
    ui.state.borrow().keys.showing.clone()
}

/// Opens the keys of `jid` (as seen from `account`).
fn show(ui: &Rc<Ui>, account: String, jid: String) {
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<KeysAdapter>();
    let name = ui.state.borrow().people.name_of(&account, &jid);
    if showing(ui).is_none_or(|(a, j)| a != account || j != jid) {
        g.set_devices(model(Vec::new()));
        g.set_own_device(Default::default());
        g.set_own_fingerprint(Default::default());
        g.set_own_uri(Default::default());
        g.set_own_qr(Image::default());
    }
    g.set_account(s(&account));
    g.set_jid(s(&jid));
    g.set_name(s(name));
    g.set_status(Default::default());
    g.set_busy(false);
    g.set_otr_note(Default::default());
    g.set_otr_busy(false);
    g.set_otr_asked(false);
    g.set_open(true);
    ui.state.borrow_mut().keys.showing = Some((account, jid));
    load(ui);
    load_otr(ui);
}

/// Reads our key and fetches theirs (from the network when online, else what is stored).
fn load(ui: &Rc<Ui>) {
    let Some((account, jid)) = showing(ui) else {
        return;
    };
    let Some(w) = ui.window.upgrade() else { return };
    let generation = {
        let mut st = ui.state.borrow_mut();
        st.keys.generation += 1;
        st.keys.generation
    };
    w.global::<KeysAdapter>().set_loading(true);
    let client = ui.client.clone();
    let a = account.clone();
    background(
        ui,
        async move {
            let own = client.omemo_own(&a).await;
            let devices = client.omemo_devices(&a, &jid).await;
            (own, devices)
        },
        move |ui, w, (own, devices)| {
            if ui.state.borrow().keys.generation != generation {
                return;
            }
            let g = w.global::<KeysAdapter>();
            g.set_loading(false);
            let mut problems = Vec::new();
            match own {
                Ok((device, fpr)) => {
                    let uri = encryption::own_key_uri(&account, device, &fpr);
                    g.set_own_device(s(device.to_string()));
                    g.set_own_fingerprint(s(encryption::group_fingerprint(&fpr)));
                    g.set_own_qr(
                        encryption::qr(&uri)
                            .map(|q| qr_image(&q))
                            .unwrap_or_default(),
                    );
                    g.set_own_uri(s(uri));
                }
                Err(e) => problems.push(format!("Cannot read your key: {e}")),
            }
            match devices {
                Ok(devices) => {
                    let rows = encryption::key_rows(&devices);
                    g.set_devices(model(rows.into_iter().map(item).collect()));
                }
                Err(e) => problems.push(format!("Cannot fetch their keys: {e}")),
            }
            g.set_status(s(problems.join(" ")));
        },
    );
}

/// Verifies or distrusts one of their keys, then shows the keys again.
fn set_trust(ui: &Rc<Ui>, key: String, trust: Trust) {
    let Some((account, jid)) = showing(ui) else {
        return;
    };
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<KeysAdapter>();
    g.set_busy(true);
    g.set_status(Default::default());
    let client = ui.client.clone();
    background(
        ui,
        async move { client.omemo_set_trust(&account, &jid, &key, trust).await },
        |ui, w, r| {
            let g = w.global::<KeysAdapter>();
            g.set_busy(false);
            match r {
                Ok(()) => load(ui),
                Err(e) => g.set_status(s(format!("Cannot change the trust: {e}"))),
            }
        },
    );
}

/// Whether the keys view is open on `jid` of `account`.
fn is_showing(ui: &Ui, account: &str, jid: &str) -> bool {
    let Some(w) = ui.window.upgrade() else {
        return false;
    };
    w.global::<KeysAdapter>().get_open()
        && showing(ui).is_some_and(|(a, j)| a == account && j == jid)
}

/// Reads the private conversation's state (and our OTR key, while private).
fn load_otr(ui: &Rc<Ui>) {
    let Some((account, jid)) = showing(ui) else {
        return;
    };
    let client = ui.client.clone();
    let (a, j) = (account.clone(), jid.clone());
    background(
        ui,
        async move {
            let info = client.otr_status(&a, &j).await?;
            let ours = match info.status {
                OtrStatus::Encrypted => Some(client.otr_fingerprint(&a).await?),
                _ => None,
            };
            Ok::<_, starling_core::Error>((info, ours))
        },
        move |ui, w, r| {
            if !is_showing(ui, &account, &jid) {
                return;
            }
            let g = w.global::<KeysAdapter>();
            match r {
                Ok((info, ours)) => {
                    let view = encryption::otr_view(&info, &g.get_name());
                    g.set_otr_state(s(view.state));
                    g.set_otr_private(view.private);
                    g.set_otr_finished(view.finished);
                    g.set_otr_fingerprint(s(view.fingerprint));
                    g.set_otr_verified(view.verified);
                    g.set_own_otr_fingerprint(s(ours
                        .as_deref()
                        .map(encryption::group_fingerprint)
                        .unwrap_or_default()));
                }
                Err(e) => g.set_otr_note(s(format!("Cannot read the OTR state: {e}"))),
            }
        },
    );
}

enum OtrStep {
    Start,
    End,
    Ask(String, String),
    Answer(String),
    Decline,
}

/// One OTR step the user asked for in the keys view; the view follows the core's events.
fn otr_step(ui: &Rc<Ui>, step: OtrStep) {
    let Some((account, jid)) = showing(ui) else {
        return;
    };
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<KeysAdapter>();
    g.set_otr_busy(true);
    g.set_otr_note(Default::default());
    if matches!(step, OtrStep::Answer(_) | OtrStep::Decline) {
        g.set_otr_asked(false);
    }
    let client = ui.client.clone();
    let (a, j) = (account.clone(), jid.clone());
    background(
        ui,
        async move {
            match step {
                OtrStep::Start => client.otr_start(&a, &j).await,
                OtrStep::End => client.otr_end(&a, &j).await,
                OtrStep::Ask(question, secret) => {
                    let question = Some(question.trim()).filter(|q| !q.is_empty());
                    client.otr_smp_start(&a, &j, question, &secret).await
                }
                OtrStep::Answer(secret) => client.otr_smp_answer(&a, &j, &secret).await,
                OtrStep::Decline => client.otr_smp_abort(&a, &j).await,
            }
        },
        move |ui, w, r| {
            let g = w.global::<KeysAdapter>();
            g.set_otr_busy(false);
            if let Err(e) = r {
                g.set_otr_note(s(format!("OTR: {e}")));
            }
            if is_showing(ui, &account, &jid) {
                load_otr(ui);
            }
            super::chat::on_encryption_changed(ui, &account, &jid);
        },
    );
}

/// The private conversation with `jid` changed: the view (if on them) follows.
pub(super) fn on_otr_status(ui: &Rc<Ui>, account: &str, jid: &str) {
    if is_showing(ui, account, jid) {
        load_otr(ui);
    }
}

/// `jid`'s OMEMO devices changed: the keys view, if it shows them, reads them again.
pub(super) fn on_omemo_devices(ui: &Rc<Ui>, account: &str, jid: &str) {
    if is_showing(ui, account, jid) {
        load(ui);
    }
}

/// `jid` asks us to prove who we are: the keys view opens on them with the question.
pub(super) fn on_smp_question(ui: &Rc<Ui>, account: &str, jid: &str, question: Option<&str>) {
    if !is_showing(ui, account, jid) {
        show(ui, account.to_owned(), jid.to_owned());
    }
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<KeysAdapter>();
    g.set_otr_question(s(question.unwrap_or_default()));
    g.set_otr_asked(true);
}

/// A verification with `jid` ended.
pub(super) fn on_smp_result(ui: &Rc<Ui>, account: &str, jid: &str, verified: bool) {
    if !is_showing(ui, account, jid) {
        return;
    }
    let Some(w) = ui.window.upgrade() else { return };
    let g = w.global::<KeysAdapter>();
    g.set_otr_asked(false);
    g.set_otr_note(s(encryption::smp_result_note(verified, &g.get_name())));
    load_otr(ui);
}

fn item(r: KeyRow) -> KeyItem {
    KeyItem {
        device: s(&r.device),
        namespace: s(r.namespace),
        label: s(&r.label),
        fingerprint: s(&r.fingerprint),
        key: s(&r.key),
        trust: match r.trust {
            None => KeyTrust::Unknown,
            Some(Trust::Blind) => KeyTrust::Blind,
            Some(Trust::Verified) => KeyTrust::Verified,
            Some(Trust::Untrusted) => KeyTrust::Untrusted,
            Some(Trust::Undecided) => KeyTrust::Undecided,
        },
        trust_text: s(r.trust_text),
        active: r.active,
        note: s(&r.note),
        can_verify: r.can_verify,
        can_distrust: r.can_distrust,
    }
}

/// One pixel per module, black on white; the view scales it up without smoothing.
fn qr_image(q: &Qr) -> Image {
    let side = u32::try_from(q.size).unwrap_or(0);
    let mut px = SharedPixelBuffer::<Rgb8Pixel>::new(side, side);
    for (p, dark) in px.make_mut_slice().iter_mut().zip(&q.dark) {
        let v = if *dark { 0 } else { 255 };
        *p = Rgb8Pixel { r: v, g: v, b: v };
    }
    Image::from_rgb8(px)
}
