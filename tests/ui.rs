//! Headless UI tests: the real Slint components (i-slint-backend-testing, software renderer
//! not needed) driven through their accessible labels, with the real core against a real
//! Prosody and a slixmpp peer.
//!
//! Slint's platform is set once per process and its event loop runs on one thread, so this
//! binary has a single `#[test]` that runs the scenarios in order; each scenario reports its
//! own name on failure. Every wait is bounded and checks a condition: nothing sleeps to
//! synchronise.

#[path = "support/mod.rs"]
mod support;

/// The OMEMO scenario (composer lock, keys view, trust, failures).
#[path = "ui/encryption.rs"]
mod encryption;

/// The OTR scenario (keys view: start, verify both ways, end; the lock follows).
#[path = "ui/otr.rs"]
mod otr;

/// The file-sharing scenario (attach, pictures inline, viewer, download, cancel).
#[path = "ui/files.rs"]
mod files;

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use i_slint_backend_testing::{AccessibleRole, ElementHandle, ElementRoot as _};
use serde_json::{Value, json};
use slint::ComponentHandle as _;
use starling::ui::App;
use starling_core::Client;
use starling_core::connection::TlsMode;
use starling_core::secrets::Password;
use starling_core::{AccountOptions, MessageState};
use tokio::runtime::Runtime;

use support::{EVENT_TIMEOUT, TestServer, event_name};

const UI_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn desktop_ui() -> Result<()> {
    i_slint_backend_testing::init_integration_test_with_system_time();
    let rt = Rc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    );
    let server = Rc::new(support::fresh_server()?);
    let (r2, s2) = (rt.clone(), server.clone());
    with_server(server, move || {
        run_scenario(
            "wizard shows the wrong-password error",
            wizard_wrong_password(r2.clone(), s2.clone()),
        )?;
        run_scenario(
            "incoming message counts as unread; typed message reaches the peer",
            chat_round_trip(r2.clone(), s2.clone()),
        )?;
        run_scenario(
            "a long timeline loads page by page, in both directions",
            long_timeline(r2.clone(), s2.clone()),
        )?;
        run_scenario(
            "feed: stored posts newest first with comments; publish, comment; offline error",
            social_feed(r2.clone(), s2.clone()),
        )?;
        run_scenario(
            "profiles: a contact's picture and nickname everywhere; saving our own profile",
            profiles(r2.clone(), s2.clone()),
        )?;
        run_scenario(
            "group chat: invitation, join from the dialog, talk, occupants, moderation",
            group_chat(r2.clone(), s2.clone()),
        )?;
        run_scenario(
            "encryption: the lock, locks on both sides, keys and trust, skipped devices, \
             refusals in the chat, turning it off, an undecryptable message",
            encryption::encryption(r2.clone(), s2.clone()),
        )?;
        run_scenario(
            "files: attach by path, pictures inline and in the viewer, download, cancel",
            files::files(r2.clone(), s2.clone()),
        )?;
        run_scenario(
            "OTR: start from the keys view, the lock follows, verify both ways, end",
            otr::otr(r2, s2),
        )
    })
}

/// Runs the scenarios and stops the server whatever happened.
fn with_server(server: Rc<TestServer>, scenarios: impl FnOnce() -> Result<()>) -> Result<()> {
    let r = scenarios();
    match Rc::try_unwrap(server) {
        Ok(s) => r.and(s.stop()),
        Err(_) => r.and(Err(anyhow!("server still in use"))),
    }
}

/// Runs `script` inside the Slint event loop (as a local task) and returns its result.
fn run_scenario(name: &str, script: impl Future<Output = Result<()>> + 'static) -> Result<()> {
    let result = Rc::new(std::cell::RefCell::new(None));
    let slot = result.clone();
    let task = slint::spawn_local(async move {
        let r = script.await;
        *slot.borrow_mut() = Some(r);
        if let Err(e) = slint::quit_event_loop() {
            eprintln!("cannot quit the event loop: {e}");
        }
    })
    .map_err(|e| anyhow!("{e}"))?;
    let ran = slint::run_event_loop_until_quit().map_err(|e| anyhow!("{e}"));
    let finished = result.borrow_mut().take();
    let Some(r) = finished else {
        // Drop the unfinished script so it releases the server (stopped by the caller).
        task.abort();
        ran?;
        bail!("the scenario did not finish");
    };
    r.with_context(|| format!("scenario: {name}"))
}

fn options(server: &TestServer) -> AccountOptions {
    AccountOptions {
        server: Some(("127.0.0.1".into(), server.c2s_port())),
        tls: TlsMode::StartTls,
        ca_file: Some(server.ca_file().to_path_buf()),
        first_sync_days: None,
    }
}

/// A private profile with `account` added (its login checked), and its client.
async fn profile_with(
    rt: &Runtime,
    server: &TestServer,
    account: &support::Account,
) -> Result<(tempfile::TempDir, Client)> {
    let profile = tempfile::tempdir()?;
    let client = Client::open_private(profile.path())?;
    let (c, a, o) = (client.clone(), account.clone(), options(server));
    on_rt(rt, async move {
        c.add_account(&a.jid, Password::new(a.password.clone()), o)
            .await?;
        Ok(())
    })
    .await?;
    Ok((profile, client))
}

/// Shows the window and waits until its account is online.
async fn show_online(app: &App) -> Result<()> {
    app.window().show()?;
    until("online", || {
        find_labels(app, AccessibleRole::Text, |l| l == "Online")
            .into_iter()
            .next()
    })
    .await?;
    Ok(())
}

/// Yields to the event loop for a moment (so timers and posted updates run).
async fn tick() {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    slint::Timer::single_shot(Duration::from_millis(20), move || {
        if tx.send(()).is_err() {
            eprintln!("tick receiver gone");
        }
    });
    if rx.await.is_err() {
        eprintln!("tick sender gone");
    }
}

/// Waits until `probe` returns Some, checking after every tick of the event loop.
async fn until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + UI_TIMEOUT;
    loop {
        if let Some(v) = probe() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tick().await;
    }
}

/// Runs a future on the tokio runtime and awaits it from the UI thread.
async fn on_rt<T: Send + 'static>(
    rt: &Runtime,
    fut: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    rt.spawn(fut).await.map_err(|e| anyhow!("task: {e}"))?
}

/// Disconnects a scenario's client at its end (on the runtime, awaited from the UI thread).
async fn go_offline(rt: &Runtime, client: Client) -> Result<()> {
    on_rt(rt, async move {
        client.disconnect_all().await;
        Ok(())
    })
    .await
}

fn labelled(app: &App, label: &str) -> Result<ElementHandle> {
    ElementHandle::find_by_accessible_label(app.window(), label)
        .next()
        .ok_or_else(|| anyhow!("no element labelled {label:?}"))
}

/// Presses and releases a key in the window (goes to the focused element).
fn press(app: &App, key: slint::platform::Key) {
    let text: slint::SharedString = key.into();
    app.window()
        .window()
        .dispatch_event(slint::platform::WindowEvent::KeyPressed { text: text.clone() });
    app.window()
        .window()
        .dispatch_event(slint::platform::WindowEvent::KeyReleased { text });
}

/// Presses Ctrl + `key` (a letter) in the window.
fn press_ctrl(app: &App, key: &str) {
    use slint::platform::{Key, WindowEvent};
    let ctrl: slint::SharedString = Key::Control.into();
    let w = app.window().window();
    w.dispatch_event(WindowEvent::KeyPressed { text: ctrl.clone() });
    w.dispatch_event(WindowEvent::KeyPressed { text: key.into() });
    w.dispatch_event(WindowEvent::KeyReleased { text: key.into() });
    w.dispatch_event(WindowEvent::KeyReleased { text: ctrl });
}

/// Waits until an element with `role` and a label satisfying `pred` shows; returns its label.
async fn shows(
    app: &App,
    what: &str,
    role: AccessibleRole,
    pred: impl Fn(&str) -> bool,
) -> Result<String> {
    until(what, || find_labels(app, role, &pred).into_iter().next()).await
}

/// The element with `role` and exactly this label.
fn with_role(app: &App, role: AccessibleRole, label: &str) -> Result<ElementHandle> {
    ElementHandle::find_by_accessible_label(app.window(), label)
        .find(|e| e.accessible_role() == Some(role))
        .ok_or_else(|| anyhow!("no {role:?} labelled {label:?}"))
}

/// Waits for the element with `role` and exactly this label, and invokes its default action
/// (a click, for buttons and list items).
async fn tap(app: &App, role: AccessibleRole, label: &str) -> Result<()> {
    until(&format!("{role:?} {label:?}"), || {
        with_role(app, role, label).ok()
    })
    .await?
    .invoke_accessible_default_action();
    Ok(())
}

/// The text field labelled `label` (a visible caption may carry the same label).
fn field(app: &App, label: &str) -> Result<ElementHandle> {
    ElementHandle::find_by_accessible_label(app.window(), label)
        .find(|e| e.accessible_role() == Some(AccessibleRole::TextInput))
        .ok_or_else(|| anyhow!("no text field labelled {label:?}"))
}

/// Labels of all elements with `role` whose label satisfies `pred`.
fn find_labels(app: &App, role: AccessibleRole, pred: impl Fn(&str) -> bool) -> Vec<String> {
    app.window()
        .root_element()
        .query_descendants()
        .match_accessible_role(role)
        .find_all()
        .iter()
        .filter_map(ElementHandle::accessible_label)
        .map(|l| l.to_string())
        .filter(|l| pred(l))
        .collect()
}

async fn wizard_wrong_password(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    let (rt, server) = (&*rt, &*server);
    let account = server.account("wiz")?;
    let profile = tempfile::tempdir()?;
    let client = Client::open_private(profile.path())?;
    let app = App::new(client, rt.handle().clone())?;
    app.window().show()?;

    // No account yet: the wizard shows.
    let address = until("the wizard", || field(&app, "Address").ok()).await?;
    address.set_accessible_value(account.jid.clone());
    field(&app, "Password")?.set_accessible_value("definitely-wrong");
    labelled(&app, "Advanced: server, port, certificate")?.invoke_accessible_default_action();
    let server_field = until("the advanced fields", || field(&app, "Server").ok()).await?;
    server_field.set_accessible_value("127.0.0.1");
    field(&app, "Port")?.set_accessible_value(server.c2s_port().to_string());
    field(&app, "CA file")?.set_accessible_value(server.ca_file().to_string_lossy().into_owned());
    labelled(&app, "Sign in")?.invoke_accessible_default_action();

    let error = until("the wrong-password error", || {
        find_labels(&app, AccessibleRole::Text, |l| {
            l.starts_with("Wrong password")
        })
        .into_iter()
        .next()
    })
    .await?;
    anyhow::ensure!(error.contains("try again"), "{error}");
    // Nothing was stored, and the form is usable again.
    anyhow::ensure!(
        app.ui().client.accounts()?.is_empty(),
        "a failed login must not store the account"
    );
    anyhow::ensure!(labelled(&app, "Sign in")?.accessible_enabled() == Some(true));

    // With the right password the wizard leaves and the account goes online.
    field(&app, "Password")?.set_accessible_value(account.password.clone());
    labelled(&app, "Sign in")?.invoke_accessible_default_action();
    until("the main window", || labelled(&app, "Conversations").ok()).await?;
    until("online", || {
        find_labels(&app, AccessibleRole::Text, |l| l == "Online")
            .into_iter()
            .next()
    })
    .await?;
    app.window().hide()?;
    let client = app.ui().client.clone();
    drop(app);
    go_offline(rt, client).await
}

async fn chat_round_trip(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    let (rt, server) = (&*rt, &*server);
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    let (_profile, client) = profile_with(rt, server, &alice).await?;
    let app = App::new(client.clone(), rt.handle().clone())?;
    show_online(&app).await?;

    // An incoming message shows as an unread conversation. (Peer steps block the UI
    // thread briefly; they need nothing from the UI.)
    let mut peer = rt.block_on(server.peer(&bob))?;
    rt.block_on(peer.send_message(&alice.jid, "hi from slixmpp"))?;
    let row_label = format!("{}, 1 unread, hi from slixmpp", bob.jid);
    let row = until("the unread conversation", || {
        labelled(&app, &row_label).ok()
    })
    .await?;

    // Opening it reads it: the unread count goes away.
    row.invoke_accessible_default_action();
    let read_label = format!("{}, hi from slixmpp", bob.jid);
    until("the conversation marked read", || {
        labelled(&app, &read_label).ok()
    })
    .await?;

    // Type a message and press Send: it shows in the timeline and reaches the peer.
    let input = until("the composer", || field(&app, "Message").ok()).await?;
    input.set_accessible_value("hello from the desktop app");
    labelled(&app, "Send")?.invoke_accessible_default_action();
    until("the bubble", || {
        find_labels(&app, AccessibleRole::Text, |l| {
            l.starts_with("You, ") && l.ends_with(": hello from the desktop app")
        })
        .into_iter()
        .next()
    })
    .await?;
    anyhow::ensure!(
        input.accessible_value().is_some_and(|v| v.is_empty()),
        "the composer is cleared after sending"
    );
    let got: Value = rt.block_on(peer.next_event_matching(
        |e| event_name(e) == "message" && e["body"] == "hello from the desktop app",
        EVENT_TIMEOUT,
    ))?;
    anyhow::ensure!(
        got["from"]
            .as_str()
            .is_some_and(|f| f.starts_with(&alice.jid)),
        "{got}"
    );
    // The server acknowledged it and the peer's receipt came back: the tick says so.
    until("the delivered tick", || {
        find_labels(&app, AccessibleRole::Text, |l| l == "delivered")
            .into_iter()
            .next()
    })
    .await?;
    // Enter sends; Up in the empty composer corrects the last message (XEP-0308).
    input
        .single_click(slint::platform::PointerEventButton::Left)
        .await;
    input.set_accessible_value("sent with enter");
    press(&app, slint::platform::Key::Return);
    until("the bubble sent with Enter", || {
        find_labels(&app, AccessibleRole::Text, |l| {
            l.ends_with(": sent with enter")
        })
        .into_iter()
        .next()
    })
    .await?;
    rt.block_on(peer.next_event_matching(
        |e| event_name(e) == "message" && e["body"] == "sent with enter",
        EVENT_TIMEOUT,
    ))?;
    press(&app, slint::platform::Key::UpArrow);
    anyhow::ensure!(
        input.accessible_value().as_deref() == Some("sent with enter"),
        "Up puts the last message in the composer: {:?}",
        input.accessible_value()
    );
    input.set_accessible_value("sent with Enter, corrected");
    press(&app, slint::platform::Key::Return);
    until("the corrected bubble", || {
        find_labels(&app, AccessibleRole::Text, |l| {
            l.ends_with(": sent with Enter, corrected (edited)")
        })
        .into_iter()
        .next()
    })
    .await?;
    let fix: Value = rt.block_on(peer.next_event_matching(
        |e| event_name(e) == "message" && e["body"] == "sent with Enter, corrected",
        EVENT_TIMEOUT,
    ))?;
    anyhow::ensure!(!fix["replace"].is_null(), "sent as a correction: {fix}");

    // Search finds the peer's message; the hit opens the conversation at it.
    ElementHandle::find_by_accessible_label(app.window(), "Search")
        .find(|e| e.accessible_role() == Some(AccessibleRole::Tab))
        .context("the Search tab")?
        .invoke_accessible_default_action();
    let query = until("the search field", || field(&app, "Search query").ok()).await?;
    query
        .single_click(slint::platform::PointerEventButton::Left)
        .await;
    query.set_accessible_value("slixmpp");
    press(&app, slint::platform::Key::Return);
    let hit_label = until("the search hit", || {
        find_labels(&app, AccessibleRole::ListItem, |l| {
            l.starts_with(&bob.jid) && l.ends_with(": hi from slixmpp")
        })
        .into_iter()
        .next()
    })
    .await?;
    labelled(&app, &hit_label)?.invoke_accessible_default_action();
    until("the conversation at the hit", || {
        find_labels(&app, AccessibleRole::Text, |l| {
            l.ends_with(": hi from slixmpp")
        })
        .into_iter()
        .next()
    })
    .await?;
    anyhow::ensure!(
        app.window().global::<starling::ui::Shell<'_>>().get_pane() == starling::ui::Pane::Chats,
        "opening a hit shows the chat"
    );

    let stored = client.history(&alice.jid, &bob.jid, 10)?;
    anyhow::ensure!(
        stored
            .iter()
            .any(|m| m.outgoing && m.state == MessageState::Delivered),
        "{stored:?}"
    );

    app.window().hide()?;
    drop(app);
    rt.block_on(peer.quit())?;
    go_offline(rt, client).await
}

async fn long_timeline(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    use slint::Model as _;
    use starling::ui::{ChatAdapter, ConversationsAdapter};
    use starling_core::store::IncomingMessage;

    let (rt, server) = (&*rt, &*server);
    let me = server.account("pager")?;
    let peer = "history@example.org";
    let (_profile, client) = profile_with(rt, server, &me).await?;
    // 250 stored messages, one a minute.
    let account = client.store().account(&me.jid)?.id;
    let msgs: Vec<IncomingMessage> = (0..250)
        .map(|i| IncomingMessage {
            peer: peer.into(),
            outgoing: i % 3 == 0,
            sender: peer.into(),
            stanza_id: Some(format!("m{i}")),
            origin_id: None,
            archive_id: None,
            body: format!("message number {i}"),
            timestamp: 1_700_000_000_000 + i * 60_000,
            ..IncomingMessage::default()
        })
        .collect();
    client.store().ingest_all(account, &msgs)?;

    let app = App::new(client.clone(), rt.handle().clone())?;
    app.window().show()?;
    let chat = app.window().global::<ChatAdapter<'_>>();
    let list = app.window().global::<ConversationsAdapter<'_>>();
    until("the conversation in the list", || {
        (list.get_items().row_count() == 1).then_some(())
    })
    .await?;
    list.invoke_open(me.jid.clone().into(), peer.into());
    let rows = |chat: &ChatAdapter<'_>| chat.get_messages().row_count();
    until("the newest page", || (rows(&chat) == 100).then_some(())).await?;
    anyhow::ensure!(chat.get_has_older() && chat.get_at_live_end());
    let last = chat.get_messages().row_data(99).context("row 99")?;
    anyhow::ensure!(last.text == "message number 249", "{}", last.text);

    // Scrolling up asks for older pages until the beginning.
    chat.invoke_load_older();
    until("the second page", || (rows(&chat) == 200).then_some(())).await?;
    chat.invoke_load_older();
    until("the beginning", || (rows(&chat) == 250).then_some(())).await?;
    anyhow::ensure!(!chat.get_has_older(), "the beginning was reached");
    let first = chat.get_messages().row_data(0).context("row 0")?;
    anyhow::ensure!(first.text == "message number 0", "{}", first.text);
    anyhow::ensure!(!first.day.is_empty(), "the first row has a day separator");

    // A search hit in the middle opens a window around it; scrolling down reaches the end.
    let search = app.window().global::<starling::ui::SearchAdapter<'_>>();
    search.invoke_search("\"number 42\"".into());
    until("the hit", || {
        (search.get_hits().row_count() > 0).then_some(())
    })
    .await?;
    let hit = (0..search.get_hits().row_count())
        .find(|i| {
            search
                .get_hits()
                .row_data(*i)
                .is_some_and(|h| h.text == "message number 42")
        })
        .context("message 42 among the hits")?;
    search.invoke_open_hit(i32::try_from(hit)?);
    until("the window around the hit", || {
        // 42 older messages, the hit, and a page of newer ones.
        (!chat.get_at_live_end() && rows(&chat) == 143).then_some(())
    })
    .await?;
    let highlighted: Vec<_> = (0..rows(&chat))
        .filter_map(|i| chat.get_messages().row_data(i))
        .filter(|m| m.highlighted)
        .map(|m| m.text.to_string())
        .collect();
    anyhow::ensure!(highlighted == ["message number 42"], "{highlighted:?}");
    chat.invoke_load_newer();
    until("the next page", || (rows(&chat) == 243).then_some(())).await?;
    anyhow::ensure!(!chat.get_at_live_end(), "a full page: there may be more");
    chat.invoke_load_newer();
    until("the end", || {
        (chat.get_at_live_end() && rows(&chat) == 250).then_some(())
    })
    .await?;
    let texts: Vec<_> = (0..rows(&chat))
        .filter_map(|i| chat.get_messages().row_data(i))
        .map(|m| m.text.to_string())
        .collect();
    let expected: Vec<_> = (0..250).map(|i| format!("message number {i}")).collect();
    anyhow::ensure!(
        texts == expected,
        "rows in timeline order without gaps or repeats"
    );

    drop(app);
    go_offline(rt, client).await
}

async fn group_chat(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    use slint::Model as _;
    use starling::testbed::CONFERENCE_DOMAIN;
    use starling::ui::{ChatAdapter, ConversationKind, RoomAdapter};

    let (rt, server) = (&*rt, &*server);
    let (alice, bob, carol) = (
        server.account("alice")?,
        server.account("bob")?,
        server.account("carol")?,
    );
    let room = format!("{}@{CONFERENCE_DOMAIN}", support::unique_name("tea"));
    let other = format!("{}@{CONFERENCE_DOMAIN}", support::unique_name("coffee"));
    let (_profile, client) = profile_with(rt, server, &alice).await?;
    let app = App::new(client.clone(), rt.handle().clone())?;
    show_online(&app).await?;

    // Bob opens two rooms and invites Alice to one of them: the invitation shows with Join
    // and Decline; declining removes it.
    let mut bob_peer = rt.block_on(server.peer(&bob))?;
    for r in [&room, &other] {
        rt.block_on(bob_peer.command(json!({"cmd": "muc_join", "room": r, "nick": "Bob"})))?;
    }
    // Listed in the service's directory (Prosody's rooms are hidden by default), with a name.
    rt.block_on(
        bob_peer.command(json!({"cmd": "muc_configure", "room": room, "fields": {
            "muc#roomconfig_publicroom": "1",
            "muc#roomconfig_roomname": "Tea Room",
        }})),
    )?;
    rt.block_on(
        bob_peer.command(json!({"cmd": "muc_subject", "room": room, "subject": "Tea time"})),
    )?;
    rt.block_on(bob_peer.command(
        json!({"cmd": "muc_direct_invite", "room": other, "to": alice.jid, "reason": "coffee?"}),
    ))?;
    let invitation = format!("{} invited you to {other}", bob.jid);
    shows(&app, "the invitation", AccessibleRole::Groupbox, |l| {
        l == invitation
    })
    .await?;
    tap(
        &app,
        AccessibleRole::Button,
        &format!("Decline the invitation to {other}"),
    )
    .await?;
    until("the invitation gone", || {
        find_labels(&app, AccessibleRole::Groupbox, |l| l == invitation)
            .is_empty()
            .then_some(())
    })
    .await?;

    // Ctrl+J opens the join dialog; Browse lists the service's public rooms; picking one
    // fills the address; Join joins and opens the room.
    press_ctrl(&app, "j");
    shows(&app, "the join dialog", AccessibleRole::Text, |l| {
        l == "Join a room"
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Browse public rooms").await?;
    let listing = shows(
        &app,
        "the room in the list",
        AccessibleRole::ListItem,
        |l| l == format!("Tea Room, {room}"),
    )
    .await
    .with_context(|| {
        let j = app.window().global::<starling::ui::JoinAdapter<'_>>();
        format!(
            "browsing: {:?}; listed: {:?}",
            j.get_browse_status(),
            find_labels(&app, AccessibleRole::ListItem, |_| true)
        )
    })?;
    tap(&app, AccessibleRole::ListItem, &listing).await?;
    anyhow::ensure!(
        field(&app, "Room address")?.accessible_value().as_deref() == Some(room.as_str()),
        "picking a listed room fills the address"
    );
    anyhow::ensure!(
        field(&app, "Nickname")?
            .accessible_value()
            .is_some_and(|v| v.is_empty()),
        "the nick defaults to the account's name (its placeholder)"
    );
    tap(&app, AccessibleRole::Button, "Join the room").await?;
    let chat = app.window().global::<ChatAdapter<'_>>();
    let panel = app.window().global::<RoomAdapter<'_>>();
    until("the room open and joined", || {
        (chat.get_kind() == ConversationKind::Room
            && chat.get_peer() == room.as_str()
            && panel.get_joined())
        .then_some(())
    })
    .await?;
    anyhow::ensure!(
        find_labels(&app, AccessibleRole::Text, |l| l == "Join a room").is_empty(),
        "the dialog closed"
    );
    shows(
        &app,
        "the subject in the header",
        AccessibleRole::Text,
        |l| l == "Tea time",
    )
    .await?;
    anyhow::ensure!(chat.get_title() == "Tea Room", "{}", chat.get_title());

    // The occupant panel lists both, grouped by role with badges.
    let me = alice.user.clone();
    shows(&app, "Bob in the panel", AccessibleRole::ListItem, |l| {
        l == "Bob, owner"
    })
    .await?;
    shows(
        &app,
        "ourselves in the panel",
        AccessibleRole::ListItem,
        |l| l == format!("{me} (you)"),
    )
    .await?;
    let rows: Vec<String> = (0..panel.get_occupants().row_count())
        .filter_map(|i| panel.get_occupants().row_data(i))
        .map(|o| {
            if o.header {
                format!("#{:?} {}", o.group, o.count)
            } else {
                o.nick.to_string()
            }
        })
        .collect();
    anyhow::ensure!(
        rows == ["#Moderator 1", "Bob", "#Participant 1", me.as_str()],
        "{rows:?}"
    );

    // Bob's message shows with his nick, and as a mention of us.
    let hello = format!("hello {me}, welcome");
    rt.block_on(bob_peer.command(json!({"cmd": "muc_send", "room": room, "body": hello})))?;
    shows(&app, "Bob's message", AccessibleRole::Text, |l| {
        l.starts_with("Bob, ") && l.ends_with(&format!(": {hello} (mentions you)"))
    })
    .await?;
    let last = |chat: &ChatAdapter<'_>| {
        let m = chat.get_messages();
        m.row_count().checked_sub(1).and_then(|i| m.row_data(i))
    };
    let row = last(&chat).context("Bob's row")?;
    anyhow::ensure!(
        row.author == "Bob" && row.show_author && row.mention && !row.outgoing,
        "{row:?}"
    );

    // We answer from the composer: the room reflects it (delivered), Bob sees it.
    let input = until("the composer", || field(&app, "Message").ok()).await?;
    input
        .single_click(slint::platform::PointerEventButton::Left)
        .await;
    input.set_accessible_value("hi Bob");
    press(&app, slint::platform::Key::Return);
    rt.block_on(bob_peer.next_event_matching(
        |e| event_name(e) == "groupchat" && e["body"] == "hi Bob" && e["nick"] == json!(me),
        EVENT_TIMEOUT,
    ))?;
    shows(&app, "the delivered tick", AccessibleRole::Text, |l| {
        l == "delivered"
    })
    .await?;
    // Up corrects it, in the room (XEP-0308 over groupchat).
    press(&app, slint::platform::Key::UpArrow);
    anyhow::ensure!(input.accessible_value().as_deref() == Some("hi Bob"));
    input.set_accessible_value("hi Bob!");
    press(&app, slint::platform::Key::Return);
    let fix = rt.block_on(bob_peer.next_event_matching(
        |e| event_name(e) == "groupchat" && e["body"] == "hi Bob!",
        EVENT_TIMEOUT,
    ))?;
    anyhow::ensure!(!fix["replace"].is_null(), "sent as a correction: {fix}");
    shows(&app, "the corrected bubble", AccessibleRole::Text, |l| {
        l.starts_with("You, ") && l.ends_with(": hi Bob! (edited)")
    })
    .await?;

    // Our message's menu retracts it, for everyone.
    tap(&app, AccessibleRole::Button, "Actions for: hi Bob!").await?;
    tap(&app, AccessibleRole::Button, "Retract message").await?;
    tap(&app, AccessibleRole::Button, "Retract").await?;
    shows(&app, "the retracted bubble", AccessibleRole::Text, |l| {
        l.starts_with("You, ") && l.ends_with(": Message retracted")
    })
    .await
    .with_context(|| {
        format!(
            "toast {:?}; bubbles {:?}",
            app.window().global::<starling::ui::Shell<'_>>().get_toast(),
            find_labels(&app, AccessibleRole::Text, |l| l.starts_with("You"))
        )
    })?;
    rt.block_on(bob_peer.next_event_matching(
        |e| event_name(e) == "groupchat" && !e["retract"].is_null(),
        EVENT_TIMEOUT,
    ))?;

    // Carol arrives; Bob makes us a moderator; we kick Carol from her menu, with a reason.
    let mut carol_peer = rt.block_on(server.peer(&carol))?;
    rt.block_on(carol_peer.command(json!({"cmd": "muc_join", "room": room, "nick": "Carol"})))?;
    shows(&app, "Carol in the panel", AccessibleRole::ListItem, |l| {
        l == "Carol"
    })
    .await?;
    rt.block_on(
        bob_peer.command(json!({"cmd": "muc_role", "room": room, "nick": me, "role": "moderator"})),
    )?;
    until("moderator rights", || {
        panel.get_can_moderate().then_some(())
    })
    .await?;
    tap(&app, AccessibleRole::ListItem, "Carol").await?;
    tap(&app, AccessibleRole::Button, "Kick Carol").await?;
    until("the reason field", || field(&app, "Reason").ok())
        .await?
        .set_accessible_value("too loud");
    tap(&app, AccessibleRole::Button, "Kick").await?;
    shows(&app, "the kick notice", AccessibleRole::Text, |l| {
        l.starts_with("Carol was kicked") && l.ends_with("too loud")
    })
    .await?;
    until("Carol gone from the panel", || {
        find_labels(&app, AccessibleRole::ListItem, |l| l == "Carol")
            .is_empty()
            .then_some(())
    })
    .await?;
    let notice = last(&chat).context("the notice row")?;
    anyhow::ensure!(notice.notice && notice.author.is_empty(), "{notice:?}");

    // A private message from Bob's menu goes to Bob in the room, not to his address.
    tap(&app, AccessibleRole::ListItem, "Bob, owner").await?;
    tap(&app, AccessibleRole::Button, "Private message to Bob").await?;
    until("the private conversation", || {
        (chat.get_kind() == ConversationKind::Private
            && chat.get_peer() == format!("{room}/Bob").as_str())
        .then_some(())
    })
    .await?;
    let input = until("the composer", || field(&app, "Message").ok()).await?;
    input.set_accessible_value("psst");
    labelled(&app, "Send")?.invoke_accessible_default_action();
    rt.block_on(bob_peer.next_event_matching(
        |e| event_name(e) == "muc_pm" && e["body"] == "psst",
        EVENT_TIMEOUT,
    ))?;
    // Meanwhile the room mentions us: its row counts the mention apart from the unread.
    rt.block_on(bob_peer.command(
        json!({"cmd": "muc_send", "room": room, "body": format!("{me}: are you there?")}),
    ))?;
    let room_row = shows(
        &app,
        "the room's mention count",
        AccessibleRole::ListItem,
        |l| l.contains(", room, ") && l.contains("1 mention"),
    )
    .await?;
    anyhow::ensure!(room_row.contains("unread"), "{room_row}");
    tap(&app, AccessibleRole::ListItem, &room_row).await?;
    until("the room again", || {
        (chat.get_kind() == ConversationKind::Room).then_some(())
    })
    .await?;

    // Bob kicks us: the header says so, with Rejoin; rejoining puts us back.
    rt.block_on(bob_peer.command(
        json!({"cmd": "muc_role", "room": room, "nick": me, "role": "none", "reason": "bye Alice"}),
    ))?;
    let removed = shows(&app, "the removal", AccessibleRole::Text, |l| {
        l.starts_with("You were kicked") && l.ends_with("bye Alice")
    })
    .await?;
    anyhow::ensure!(removed.contains("Bob"), "{removed}");
    anyhow::ensure!(!panel.get_joined() && panel.get_occupants().row_count() == 0);
    tap(&app, AccessibleRole::Button, "Rejoin").await?;
    until("back in the room", || panel.get_joined().then_some(())).await?;
    shows(
        &app,
        "ourselves in the panel again",
        AccessibleRole::ListItem,
        |l| l == format!("{me} (you)"),
    )
    .await?;

    app.window().hide()?;
    drop(app);
    rt.block_on(bob_peer.quit())?;
    rt.block_on(carol_peer.quit())?;
    go_offline(rt, client).await
}

async fn social_feed(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    use slint::Model as _;
    use starling::ui::{FeedAdapter, ProfileAdapter};
    use starling_core::Audience;
    use starling_core::proto::microblog::html;
    use starling_core::store::{CommentInput, PostInput};

    let (rt, server) = (&*rt, &*server);
    let me = server.account("poster")?;
    let (_profile, client) = profile_with(rt, server, &me).await?;
    // Three stored posts an hour old, a minute apart, stored out of order, by two people
    // outside our roster (refreshing the feed fetches only our own and our contacts'
    // posts, so it leaves these alone); the middle one has a verified and an unverified
    // comment.
    let account = client.store().account(&me.jid)?.id;
    let base = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )? - 3_600_000;
    let (bob, carol) = ("bob@elsewhere.example", "carol@elsewhere.example");
    let seed = |item: &str, author: &str, name: &str, text: &str, at: i64| PostInput {
        service: author.into(),
        node: "urn:xmpp:microblog:0".into(),
        item_id: item.into(),
        author: author.into(),
        author_name: Some(name.into()),
        title: None,
        body: html::from_text(text),
        tags: Vec::new(),
        enclosures: Vec::new(),
        comments_service: None,
        comments_node: None,
        audience: Audience::Public,
        published: at,
        updated: at,
    };
    let store = client.store();
    let (second, _) = store.upsert_post(
        account,
        &seed("p2", bob, "Bob", "the second post", base + 60_000),
    )?;
    store.upsert_post(account, &seed("p1", carol, "Carol", "the first post", base))?;
    store.upsert_post(
        account,
        &seed("p3", carol, "Carol", "the third post", base + 120_000),
    )?;
    for (i, (text, verified)) in [("nice", true), ("agreed", false)].into_iter().enumerate() {
        let at = base + 90_000 + i64::try_from(i)? * 1_000;
        store.upsert_comment(
            second.id,
            &CommentInput {
                item_id: format!("c{i}"),
                author: Some("dave@elsewhere.example".into()),
                author_name: Some("Dave".into()),
                verified,
                text: text.into(),
                markdown: text.into(),
                published: at,
                updated: at,
            },
        )?;
    }

    let app = App::new(client.clone(), rt.handle().clone())?;
    show_online(&app).await?;

    // The Feed tab lists them newest first, each with its comment count.
    tap(&app, AccessibleRole::Tab, "Feed").await?;
    let feed = app.window().global::<FeedAdapter<'_>>();
    let texts = |feed: &FeedAdapter<'_>| -> Vec<String> {
        let m = feed.get_posts();
        (0..m.row_count())
            .filter_map(|i| m.row_data(i))
            .map(|p| p.text.to_string())
            .collect()
    };
    until("the stored posts", || {
        (texts(&feed).len() == 3).then_some(())
    })
    .await
    .with_context(|| {
        format!(
            "posts {:?}; accounts {}; status {:?}; toast {:?}",
            texts(&feed),
            feed.get_accounts().row_count(),
            feed.get_status(),
            app.window().global::<starling::ui::Shell<'_>>().get_toast()
        )
    })?;
    anyhow::ensure!(
        texts(&feed) == ["the third post", "the second post", "the first post"],
        "{:?}",
        texts(&feed)
    );
    let bobs = shows(&app, "Bob's post", AccessibleRole::ListItem, |l| {
        l.starts_with("Bob, ") && l.ends_with(": the second post, 2 comments")
    })
    .await?;
    shows(&app, "Carol's newest post", AccessibleRole::ListItem, |l| {
        l.starts_with("Carol, ") && l.ends_with(": the third post, no comments")
    })
    .await?;
    // Refreshing from the network ends (our own node is empty) and keeps them.
    until("the refresh done", || (!feed.get_updating()).then_some(())).await?;
    anyhow::ensure!(feed.get_status().is_empty(), "{}", feed.get_status());

    // Opening a post shows its comments; the unverified one is marked.
    tap(&app, AccessibleRole::ListItem, &bobs).await?;
    shows(&app, "the verified comment", AccessibleRole::Text, |l| {
        l.starts_with("Dave, ") && l.ends_with(": nice")
    })
    .await?;
    shows(&app, "the unverified comment", AccessibleRole::Text, |l| {
        l.starts_with("Dave (unverified), ") && l.ends_with(": agreed")
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Close the post").await?;
    until("the post closed", || (!feed.get_post_open()).then_some(())).await?;

    // Publishing from the composer: the post appears on top without a reload (the feed's
    // diffs), and the composer empties.
    let composer = until("the composer", || field(&app, "New post").ok()).await?;
    composer.set_accessible_value("hello from the feed");
    field(&app, "Tags")?.set_accessible_value("#hello, starling");
    tap(&app, AccessibleRole::Button, "Publish").await?;
    until("our post on top", || {
        feed.get_posts()
            .row_data(0)
            .filter(|p| p.text == "hello from the feed")
    })
    .await
    .with_context(|| format!("publish error: {:?}", feed.get_publish_error()))?;
    let mine = feed.get_posts().row_data(0).context("row 0")?;
    anyhow::ensure!(
        mine.own
            && mine.name == "You"
            && mine.tags == "#hello #starling"
            && mine.audience == "Contacts",
        "{mine:?}"
    );
    until("the composer emptied", || {
        composer
            .accessible_value()
            .is_some_and(|v| v.is_empty())
            .then_some(())
    })
    .await?;

    // Commenting on it from its page: the comment shows, and the feed's row counts it.
    let ours = shows(&app, "our post", AccessibleRole::ListItem, |l| {
        l.starts_with("You, ") && l.contains(": hello from the feed")
    })
    .await?;
    tap(&app, AccessibleRole::ListItem, &ours).await?;
    until("the comment box", || field(&app, "Comment").ok())
        .await?
        .set_accessible_value("first!");
    tap(&app, AccessibleRole::Button, "Send the comment").await?;
    shows(&app, "our comment", AccessibleRole::Text, |l| {
        l.starts_with("You, ") && l.ends_with(": first!")
    })
    .await
    .with_context(|| format!("comment error: {:?}", feed.get_comment_error()))?;
    until("the count in the feed", || {
        feed.get_posts()
            .row_data(0)
            .filter(|p| p.text == "hello from the feed" && p.comments == 1)
    })
    .await?;

    // Our own post can be edited (same place in the feed, marked edited) and deleted
    // after a confirmation.
    tap(&app, AccessibleRole::Button, "Edit the post").await?;
    until("the edit field", || field(&app, "Post text").ok())
        .await?
        .set_accessible_value("hello from the feed, edited");
    tap(&app, AccessibleRole::Button, "Save the post").await?;
    until("the edited post on top", || {
        feed.get_posts()
            .row_data(0)
            .filter(|p| p.text == "hello from the feed, edited" && p.edited)
    })
    .await
    .with_context(|| format!("edit error: {:?}", feed.get_edit_error()))?;
    anyhow::ensure!(!feed.get_editing(), "the editor closed");
    tap(&app, AccessibleRole::Button, "Delete the post").await?;
    tap(&app, AccessibleRole::Button, "Delete").await?;
    until("the post gone", || {
        (!feed.get_post_open() && texts(&feed).len() == 3).then_some(())
    })
    .await
    .with_context(|| format!("{:?}; error {:?}", texts(&feed), feed.get_edit_error()))?;

    // Offline: publishing says why, and the text stays for later.
    {
        let (c, jid) = (client.clone(), me.jid.clone());
        on_rt(rt, async move {
            c.disconnect(&jid).await;
            Ok(())
        })
        .await?;
    }
    until("offline", || {
        find_labels(&app, AccessibleRole::Text, |l| l == "Online")
            .is_empty()
            .then_some(())
    })
    .await?;
    composer.set_accessible_value("written offline");
    tap(&app, AccessibleRole::Button, "Publish").await?;
    let error = shows(&app, "the offline error", AccessibleRole::Text, |l| {
        l.contains("is offline")
    })
    .await
    .with_context(|| {
        format!(
            "publishing {}; error {:?}; draft {:?}",
            feed.get_publishing(),
            feed.get_publish_error(),
            feed.get_draft()
        )
    })?;
    anyhow::ensure!(error.starts_with(&me.jid), "{error}");
    anyhow::ensure!(
        composer.accessible_value().as_deref() == Some("written offline"),
        "the text is kept: {:?}",
        composer.accessible_value()
    );
    anyhow::ensure!(feed.get_posts().row_count() == 3, "nothing was added");

    // An author's name opens their page with their posts (stored ones, offline).
    tap(&app, AccessibleRole::Button, "Profile of Carol").await?;
    let page = app.window().global::<ProfileAdapter<'_>>();
    until("Carol's page", || {
        (page.get_open() && page.get_jid() == carol && page.get_posts().row_count() == 2)
            .then_some(())
    })
    .await?;
    anyhow::ensure!(page.get_name() == "Carol", "{}", page.get_name());
    until("the offline note", || {
        page.get_status().starts_with("Offline").then_some(())
    })
    .await
    .with_context(|| {
        format!(
            "status {:?}; updating {}; connection {:?}",
            page.get_status(),
            page.get_updating(),
            app.window()
                .global::<starling::ui::Shell<'_>>()
                .get_connection_text()
        )
    })?;
    tap(&app, AccessibleRole::Button, "Back to the feed").await?;
    until("the feed again", || (!page.get_open()).then_some(())).await?;

    app.window().hide()?;
    drop(app);
    go_offline(rt, client).await
}

/// An element with the image role and exactly this label shows (an avatar with a picture).
async fn picture_shows(app: &App, label: &str) -> Result<()> {
    until(&format!("the picture {label:?}"), || {
        with_role(app, AccessibleRole::Image, label).ok()
    })
    .await
    .map(|_| ())
}

async fn profiles(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    use starling::ui::{ChatAdapter, ProfileAdapter, SettingsAdapter};

    let (rt, server) = (&*rt, &*server);
    let (me, bob) = (server.account("face")?, server.account("bob")?);
    server.befriend(&me.jid, &bob.jid)?;
    let files = tempfile::tempdir()?;
    let bob_png = files.path().join("bob.png");
    image::RgbImage::from_fn(120, 80, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 3) as u8, 160])
    })
    .save(&bob_png)?;
    let my_png = files.path().join("me.png");
    image::RgbImage::from_fn(300, 300, |x, y| {
        image::Rgb([200, (x / 2) as u8, (y / 2) as u8])
    })
    .save(&my_png)?;
    let not_png = files.path().join("notes.png");
    std::fs::write(&not_png, "these are notes, not a picture")?;

    let (_profile, client) = profile_with(rt, server, &me).await?;
    let app = App::new(client.clone(), rt.handle().clone())?;
    show_online(&app).await?;

    // Bob (slixmpp, in our roster without a name) publishes a picture, a nickname and a
    // vCard; then writes to us.
    let mut peer = rt.block_on(server.peer(&bob))?;
    let published = rt.block_on(peer.command(json!({"cmd": "avatar_publish", "file": bob_png})))?;
    rt.block_on(peer.command(json!({"cmd": "nick_publish", "nick": "Bobby"})))?;
    rt.block_on(peer.command(json!({
        "cmd": "pep_publish",
        "node": "urn:xmpp:vcard4",
        "id": "current",
        "xml": "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'>\
                <fn><text>Robert Marsh</text></fn>\
                <note><text>Climbs things.</text></note>\
                <url><uri>https://bob.example/</uri></url></vcard>",
        "options": {"pubsub#access_model": "open"},
    })))?;
    rt.block_on(peer.send_message(&me.jid, "hi, with a face"))?;

    // The conversation list names him by his nickname, with his picture.
    let row = until("Bobby's conversation", || {
        find_labels(&app, AccessibleRole::ListItem, |l| {
            l.starts_with("Bobby, 1 unread")
        })
        .into_iter()
        .next()
    })
    .await
    .with_context(|| format!("stored profile: {:?}", client.profile(&me.jid, &bob.jid)))?;
    picture_shows(&app, "Picture of Bobby")
        .await
        .with_context(|| {
            format!(
                "published {published}; stored {:?}; file {:?}",
                client.profile(&me.jid, &bob.jid),
                client.avatar_path(&me.jid, &bob.jid)
            )
        })?;
    // So does the chat's header.
    tap(&app, AccessibleRole::ListItem, &row).await?;
    let chat = app.window().global::<ChatAdapter<'_>>();
    until("the header's picture", || {
        (chat.get_title() == "Bobby" && chat.get_picture().size().width > 0).then_some(())
    })
    .await
    .with_context(|| format!("title {:?}", chat.get_title()))?;

    // The contact list too; his profile page says who he is.
    tap(&app, AccessibleRole::Tab, "Contacts").await?;
    shows(
        &app,
        "Bobby in the contacts",
        AccessibleRole::ListItem,
        |l| l.starts_with("Bobby, "),
    )
    .await?;
    tap(&app, AccessibleRole::Button, "Profile of Bobby").await?;
    let page = app.window().global::<ProfileAdapter<'_>>();
    until("his page with his profile", || {
        (page.get_open()
            && page.get_name() == "Bobby"
            && page.get_full_name() == "Robert Marsh"
            && page.get_bio() == "Climbs things."
            && page.get_url() == "https://bob.example/"
            && page.get_picture().size().width > 0)
            .then_some(())
    })
    .await
    .with_context(|| {
        format!(
            "name {:?}, full name {:?}, bio {:?}, url {:?}",
            page.get_name(),
            page.get_full_name(),
            page.get_bio(),
            page.get_url()
        )
    })?;
    with_role(
        &app,
        AccessibleRole::Button,
        "Web site of Bobby: https://bob.example/",
    )?;
    tap(&app, AccessibleRole::Button, "Back to the feed").await?;

    // Our own profile in Settings: a file that is not a picture is refused in the form.
    tap(&app, AccessibleRole::Tab, "Settings").await?;
    // The account's card says how its session is secured (channel-bound SASL2 login).
    shows(
        &app,
        "the connection security line",
        AccessibleRole::Text,
        |l| {
            l.starts_with("Connection security of")
                && l.contains("TLS 1.3 · certificate from a trusted authority · login ")
                && l.contains(", bound to this connection")
        },
    )
    .await?;
    let settings = app.window().global::<SettingsAdapter<'_>>();
    let nick = until("the nickname field", || field(&app, "Nickname").ok()).await?;
    nick.set_accessible_value("Face Person");
    field(&app, "Picture file")?.set_accessible_value(not_png.to_string_lossy().into_owned());
    shows(&app, "the preview error", AccessibleRole::Text, |l| {
        l.starts_with("Cannot use this picture")
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Save profile").await?;
    until("the save error", || {
        (!settings.get_profile_busy()
            && settings
                .get_profile_error()
                .starts_with("Cannot use this picture"))
        .then_some(())
    })
    .await
    .with_context(|| format!("error {:?}", settings.get_profile_error()))?;

    // A picture and a nickname are saved, shown, and readable by others.
    field(&app, "Picture file")?.set_accessible_value(my_png.to_string_lossy().into_owned());
    until("the preview", || {
        (settings.get_profile_error().is_empty() && settings.get_profile_picture().size().width > 0)
            .then_some(())
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Save profile").await?;
    until("saved", || {
        (settings.get_profile_status() == "Saved.").then_some(())
    })
    .await
    .with_context(|| format!("error {:?}", settings.get_profile_error()))?;
    anyhow::ensure!(
        settings.get_profile_picture_path().is_empty()
            && settings.get_profile_nick() == "Face Person",
        "nick {:?}, path {:?}",
        settings.get_profile_nick(),
        settings.get_profile_picture_path()
    );
    picture_shows(&app, &format!("Your picture on {}", me.jid)).await?;
    let stored = client.profile(&me.jid, &me.jid)?.context("our profile")?;
    anyhow::ensure!(stored.nick.as_deref() == Some("Face Person"), "{stored:?}");
    let fetched = rt.block_on(peer.command(json!({"cmd": "avatar_fetch", "jid": me.jid})))?;
    anyhow::ensure!(
        fetched["sha1_ok"] == true && fetched["id"] == json!(stored.avatar),
        "{fetched}"
    );
    let nick_items = rt.block_on(peer.command(json!({
        "cmd": "pep_items", "jid": me.jid, "node": "http://jabber.org/protocol/nick"
    })))?;
    anyhow::ensure!(
        nick_items.to_string().contains("Face Person"),
        "{nick_items}"
    );
    // Saving again without changes publishes nothing.
    tap(&app, AccessibleRole::Button, "Save profile").await?;
    until("nothing to save", || {
        (settings.get_profile_status() == "Nothing changed.").then_some(())
    })
    .await?;

    app.window().hide()?;
    drop(app);
    rt.block_on(peer.quit())?;
    go_offline(rt, client).await
}
