//! The desktop's file-sharing scenario: attaching a picture by its path (no file chooser
//! on a test machine), its bubble with the picture; a picture from a contact fetched by
//! itself and opened in the viewer; a file that waits for Download, then opens; a big
//! upload's progress bar and Cancel.

use super::*;

/// A `w`×`h` PNG picture.
fn png(w: u32, h: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 200])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// The timeline row of the file named `name`, once `ready` holds for it.
async fn file_row(
    app: &App,
    what: &str,
    name: &str,
    ready: impl Fn(&starling::ui::MessageItem) -> bool,
) -> Result<starling::ui::MessageItem> {
    use slint::Model as _;
    use starling::ui::ChatAdapter;
    until(what, || {
        let rows = app.window().global::<ChatAdapter<'_>>().get_messages();
        rows.iter()
            .find(|m| m.file && m.file_name == name && ready(m))
    })
    .await
}

/// Presses "Send file" once the file waiting in the composer checked out.
async fn send_staged_file(app: &App) -> Result<()> {
    until("Send file enabled", || {
        labelled(app, "Send file")
            .ok()
            .filter(|b| b.accessible_enabled() == Some(true))
    })
    .await?
    .invoke_accessible_default_action();
    Ok(())
}

pub(super) async fn files(rt: Rc<Runtime>, server: Rc<TestServer>) -> Result<()> {
    use starling::ui::{ConversationsAdapter, Shell, Viewer};
    let (rt, server) = (&*rt, &*server);
    let (alice, bob) = (server.account("alice")?, server.account("bob")?);
    server.befriend(&alice.jid, &bob.jid)?;
    let (_profile, client) = profile_with(rt, server, &alice).await?;
    let app = App::new(client.clone(), rt.handle().clone())?;
    show_online(&app).await?;
    let mut peer = rt.block_on(server.peer(&bob))?;
    let list = app.window().global::<ConversationsAdapter<'_>>();
    list.invoke_open(alice.jid.clone().into(), bob.jid.clone().into());
    let dir = tempfile::tempdir()?;

    // Attach: no chooser here, so the path is typed; the composer says what will go.
    let kitten = dir.path().join("kitten.png");
    std::fs::write(&kitten, png(300, 200)?)?;
    tap(&app, AccessibleRole::Button, "Attach a file").await?;
    let path_field = until("the file field", || field(&app, "File to send").ok()).await?;
    path_field.set_accessible_value(kitten.to_string_lossy().into_owned());
    shows(&app, "what will be sent", AccessibleRole::Text, |l| {
        l.starts_with("kitten.png · ")
    })
    .await?;
    send_staged_file(&app).await?;
    // Our bubble: the picture, from our own copy.
    shows(&app, "our picture's bubble", AccessibleRole::Text, |l| {
        l.starts_with("You, ") && l.contains(": Picture kitten.png")
    })
    .await?;
    file_row(&app, "our picture shown", "kitten.png", |m| {
        m.file_local && m.thumbnail.size().width > 0 && !m.file_uploading
    })
    .await?;
    let got: Value = rt.block_on(peer.next_event_matching(
        |e| event_name(e) == "message" && e["file"]["name"] == "kitten.png",
        EVENT_TIMEOUT,
    ))?;
    anyhow::ensure!(got["oob"] == got["body"], "{got}");

    // A picture from Bob (a contact): fetched by itself, shown, and opened in the viewer.
    let sunset = dir.path().join("sunset.png");
    std::fs::write(&sunset, png(640, 480)?)?;
    let (c, a, s) = (client.clone(), alice.jid.clone(), sunset.clone());
    let url = on_rt(
        rt,
        async move { Ok(c.upload_file(&a, &s, false).await?.url) },
    )
    .await?;
    rt.block_on(peer.command(json!({"cmd": "raw", "xml": format!(
        "<message to='{}' type='chat' id='p1'><body>{url}</body>\
         <x xmlns='jabber:x:oob'><url>{url}</url></x></message>",
        alice.jid
    )})))?;
    file_row(&app, "Bob's picture fetched and shown", "sunset.png", |m| {
        m.file_local && m.thumbnail.size().width > 0
    })
    .await?;
    tap(&app, AccessibleRole::Button, "View picture sunset.png").await?;
    let viewer = app.window().global::<Viewer<'_>>();
    until("the viewer", || {
        (viewer.get_open() && viewer.get_image().size().width == 640).then_some(())
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Close the picture").await?;
    until("the viewer closed", || (!viewer.get_open()).then_some(())).await?;

    // A file that is not a picture waits for a click; then it can be opened and saved.
    let notes = dir.path().join("notes.pdf");
    std::fs::write(&notes, b"%PDF-1.7\nnotes")?;
    let (c, a, s) = (client.clone(), alice.jid.clone(), notes.clone());
    let url = on_rt(
        rt,
        async move { Ok(c.upload_file(&a, &s, false).await?.url) },
    )
    .await?;
    rt.block_on(peer.command(json!({"cmd": "raw", "xml": format!(
        "<message to='{}' type='chat' id='p2'><body>{url}</body>\
         <x xmlns='jabber:x:oob'><url>{url}</url></x></message>",
        alice.jid
    )})))?;
    tap(&app, AccessibleRole::Button, "Download notes.pdf").await?;
    until("the file here", || labelled(&app, "Open notes.pdf").ok()).await?;
    labelled(&app, "Save notes.pdf to Downloads")?;

    // A big upload (dropped on the window: what the desktop's winit hook hands over)
    // shows its progress and can be cancelled: nothing is sent.
    let big = dir.path().join("holiday.bin");
    std::fs::write(&big, vec![3u8; 9_000_000])?;
    starling::ui::adapters::files::dropped(app.ui(), &big);
    shows(&app, "the dropped file", AccessibleRole::Text, |l| {
        l.starts_with("holiday.bin · 9.0 MB")
    })
    .await?;
    send_staged_file(&app).await?;
    until("the progress bar", || {
        labelled(&app, "Uploading holiday.bin").ok()
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Cancel sending holiday.bin").await?;
    shows(&app, "the cancelled file", AccessibleRole::Text, |l| {
        l.contains("you cancelled sending this file")
    })
    .await?;
    let stored = client.history(&alice.jid, &bob.jid, 10)?;
    anyhow::ensure!(
        stored
            .iter()
            .any(|m| m.body == "holiday.bin" && m.state == MessageState::Failed),
        "{stored:?}"
    );

    // A post with a picture attached: uploaded when publishing, linked from the post, and
    // shown in the viewer from there.
    app.window()
        .global::<Shell<'_>>()
        .set_pane(starling::ui::Pane::Feed);
    let post = until("the post composer", || field(&app, "New post").ok()).await?;
    post.set_accessible_value("A picture for my friends");
    tap(&app, AccessibleRole::Button, "Attach a file to the post").await?;
    let path_field = until("the attach field", || field(&app, "File to attach").ok()).await?;
    path_field.set_accessible_value(kitten.to_string_lossy().into_owned());
    tap(&app, AccessibleRole::Button, "Add the file").await?;
    shows(&app, "the attached file", AccessibleRole::Text, |l| {
        l.starts_with("Attached: kitten.png · ")
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Publish").await?;
    tap(&app, AccessibleRole::Button, "View Attachment: kitten.png").await?;
    until("the post's picture in the viewer", || {
        (viewer.get_open() && viewer.get_image().size().width == 300).then_some(())
    })
    .await?;
    tap(&app, AccessibleRole::Button, "Close the picture").await?;
    anyhow::ensure!(
        find_labels(&app, AccessibleRole::Text, |l| l.starts_with("Attached: ")).is_empty(),
        "the composer is cleared"
    );

    app.window().hide()?;
    drop(app);
    rt.block_on(peer.quit())?;
    go_offline(rt, client).await
}
