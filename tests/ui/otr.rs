//! The desktop's OTR scenario: starting OTR from the keys view with a contact whose client
//! answers by itself (a second Starling, the core without a window), the lock following,
//! messages both ways, the contact's question opening the view and being answered, our own
//! question verifying them, and ending it.

use super::encryption::{core_event, core_message, online_client};
use super::*;

pub(super) async fn otr(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    use starling::ui::{ChatAdapter, ConversationsAdapter, KeysAdapter};
    use starling_core::Event;
    use starling_core::crypto::otr::OtrStatus;
    use starling_core::store::Encryption;

    let (rt, server) = (&*rt, &*server);
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let (_bob_profile, bob1) = online_client(rt, server, &bob).await?;
    let mut bob_events = bob1.events();
    let (_profile, client) = profile_with(rt, server, &alice).await?;
    let app = App::new(client.clone(), rt.handle().clone())?;
    show_online(&app).await?;
    let list = app.window().global::<ConversationsAdapter<'_>>();
    list.invoke_open(alice.jid.clone().into(), bob.jid.clone().into());

    // Starting OTR from the keys view; Bob's client answers the query by itself.
    tap(&app, AccessibleRole::Button, "Encryption keys").await?;
    shows(&app, "not private yet", AccessibleRole::Text, |l| {
        l.starts_with("Not private.")
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Start OTR").await?;
    core_event(rt, &mut bob_events, "Bob's side private", |e| match e {
        Event::OtrStatus {
            status: OtrStatus::Encrypted,
            ..
        } => Some(()),
        _ => None,
    })?;
    shows(&app, "private, not verified", AccessibleRole::Text, |l| {
        l.starts_with("Private (OTR) with") && l.contains("not verified")
    })
    .await
    .with_context(|| {
        format!(
            "note {:?}",
            app.window().global::<KeysAdapter<'_>>().get_otr_note()
        )
    })?;
    let keys = app.window().global::<KeysAdapter<'_>>();
    let bob_otr = {
        let (c, jid) = (bob1.clone(), bob.jid.clone());
        on_rt(rt, async move { Ok(c.otr_fingerprint(&jid).await?) }).await?
    };
    anyhow::ensure!(
        keys.get_otr_fingerprint().replace(' ', "") == bob_otr.replace(' ', "").to_lowercase(),
        "{} vs {bob_otr}",
        keys.get_otr_fingerprint()
    );
    anyhow::ensure!(keys.get_own_otr_fingerprint().len() == 44, "ours shows");

    // The lock says OTR; a message goes out private.
    until("the lock on OTR", || {
        let g = app.window().global::<ChatAdapter<'_>>();
        (g.get_encrypted() && g.get_encryption() == "OTR").then_some(())
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Close the keys").await?;
    let input = until("the composer", || field(&app, "Message").ok()).await?;
    input.set_accessible_value("off the record");
    tap(&app, AccessibleRole::Button, "Send").await?;
    let got = core_message(rt, &mut bob_events, "off the record")?;
    anyhow::ensure!(got.encryption == Some(Encryption::Otr), "{got:?}");

    // Bob asks Alice to prove who she is: the keys view opens with his question.
    {
        let (c, b, a) = (bob1.clone(), bob.jid.clone(), alice.jid.clone());
        on_rt(rt, async move {
            Ok(c.otr_smp_start(&b, &a, Some("our city?"), "lyon").await?)
        })
        .await?;
    }
    shows(&app, "Bob's question", AccessibleRole::Text, |l| {
        l.ends_with("asks you to prove who you are: “our city?”")
    })
    .await?;
    let answer = until("the answer field", || field(&app, "Your answer").ok()).await?;
    answer.set_accessible_value("lyon");
    tap(&app, AccessibleRole::Button, "Answer").await?;
    let bob_verified = core_event(rt, &mut bob_events, "Bob's result", |e| match e {
        Event::OtrSmpResult { verified, .. } => Some(*verified),
        _ => None,
    })?;
    anyhow::ensure!(bob_verified, "Bob verified Alice");
    shows(&app, "Alice's side of it", AccessibleRole::Text, |l| {
        l.starts_with("Verified: ")
    })
    .await?;

    // Alice verifies Bob with her own question.
    tap(&app, AccessibleRole::Button, "Verify with a secret").await?;
    until("the question field", || field(&app, "Question").ok())
        .await?
        .set_accessible_value("first pet?");
    field(&app, "Secret answer")?.set_accessible_value("rex");
    tap(&app, AccessibleRole::Button, "Ask them").await?;
    core_event(
        rt,
        &mut bob_events,
        "Alice's question at Bob",
        |e| match e {
            Event::OtrSmpQuestion { question, .. } => {
                (question.as_deref() == Some("first pet?")).then_some(())
            }
            _ => None,
        },
    )?;
    {
        let (c, b, a) = (bob1.clone(), bob.jid.clone(), alice.jid.clone());
        on_rt(
            rt,
            async move { Ok(c.otr_smp_answer(&b, &a, "rex").await?) },
        )
        .await?;
    }
    shows(&app, "Bob verified", AccessibleRole::Text, |l| {
        l.starts_with("Their OTR fingerprint: ") && l.ends_with(", verified")
    })
    .await?;
    shows(&app, "the state says so", AccessibleRole::Text, |l| {
        l.contains("whose key you verified")
    })
    .await?;

    // Ending it: Bob's client hears, the lock turns off (the user's explicit choice).
    tap(&app, AccessibleRole::Button, "End OTR").await?;
    core_event(rt, &mut bob_events, "Bob hears the end", |e| match e {
        Event::OtrStatus {
            status: OtrStatus::Finished,
            ..
        } => Some(()),
        _ => None,
    })?;
    shows(&app, "not private again", AccessibleRole::Text, |l| {
        l.starts_with("Not private.")
    })
    .await?;
    until("the lock off", || {
        (!app.window().global::<ChatAdapter<'_>>().get_encrypted()).then_some(())
    })
    .await?;
    anyhow::ensure!(
        client
            .conversation_encryption(&alice.jid, &bob.jid)?
            .is_none()
    );
    tap(&app, AccessibleRole::Button, "Close the keys").await?;
    go_offline(rt, bob1).await?;
    go_offline(rt, client).await
}
