//! `starling blog …`: microblogging (XEP-0277) from the command line.

use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Subcommand;
use starling_core::store::{CommentRecord, PostRecord};
use starling_core::{Audience, Client, PostDraft, ProfileUpdate};

use super::{Output, connect_synced, fmt_time};

#[derive(Debug, Subcommand)]
pub enum BlogCmd {
    /// Publish a post. The audience is enforced by your server: public (anyone), contacts
    /// (people who see your presence) or circle:GROUP (the contacts in that roster group).
    Post {
        text: String,
        #[arg(long)]
        title: Option<String>,
        #[arg(long, default_value = "contacts", value_parser = parse_audience)]
        audience: Audience,
        /// A tag (repeat for more).
        #[arg(long = "tag")]
        tags: Vec<String>,
        /// Attach a file (repeat for more): uploaded to your server first (pictures
        /// without their location data), then linked from the post as an Atom enclosure.
        #[arg(long = "attach", value_name = "PATH")]
        attach: Vec<std::path::PathBuf>,
    },
    /// Show the feed (yours and your contacts' posts), or one person's posts.
    List {
        jid: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Show what is stored without connecting.
        #[arg(long)]
        offline: bool,
    },
    /// Replace the text of one of your posts.
    Edit { id: String, text: String },
    /// Delete one of your posts and its comments.
    Delete { id: String },
    /// Comment on someone's post (JID and the post's ID as `blog list` shows them).
    Comment {
        jid: String,
        id: String,
        text: String,
    },
    /// Show a post's comments.
    Comments { jid: String, id: String },
    /// Full-text search over stored posts.
    Search {
        text: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    /// Change your profile (readable by anyone): nickname, avatar, name, bio, web site.
    /// An empty value clears a field.
    Set {
        #[arg(long)]
        nick: Option<String>,
        /// A PNG, JPEG or WebP image (scaled to 192 px).
        #[arg(long)]
        avatar: Option<std::path::PathBuf>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        bio: Option<String>,
        #[arg(long)]
        url: Option<String>,
    },
    /// Show someone's profile (fetched from their server; yours without JID).
    Show { jid: Option<String> },
}

fn parse_audience(s: &str) -> Result<Audience, String> {
    s.parse()
}

fn print_post(p: &PostRecord) {
    let who = match &p.author_name {
        Some(n) => format!("{} ({n})", p.author),
        None => p.author.clone(),
    };
    let comments = match p.comment_count {
        0 => String::new(),
        1 => " · 1 comment".into(),
        n => format!(" · {n} comments"),
    };
    println!(
        "[{}] {who} · {}{comments} · id {}",
        fmt_time(p.published),
        p.audience,
        p.item_id
    );
    if let Some(t) = &p.title {
        println!("  {t}");
    }
    for line in p.text.lines() {
        println!("  {line}");
    }
    if !p.tags.is_empty() {
        let tags: Vec<String> = p.tags.iter().map(|t| format!("#{t}")).collect();
        println!("  {}", tags.join(" "));
    }
    for e in &p.enclosures {
        println!("  📎 {}", e.href);
    }
}

fn print_comment(c: &CommentRecord) {
    let who = c.author.as_deref().unwrap_or("someone");
    let unverified = if c.verified { "" } else { " (unverified)" };
    println!("[{}] {who}{unverified}: {}", fmt_time(c.published), c.text);
}

fn posts(out: &Output, posts: &[PostRecord]) -> Result<()> {
    if out.json {
        return out.line(&posts);
    }
    if posts.is_empty() {
        println!("No posts yet.");
    }
    for p in posts {
        print_post(p);
    }
    Ok(())
}

pub async fn run(client: &Client, out: &Output, account: &str, cmd: BlogCmd) -> Result<()> {
    match &cmd {
        BlogCmd::Search { text, limit } => {
            return posts(out, &client.search_posts(account, text, *limit)?);
        }
        BlogCmd::List {
            jid,
            limit,
            offline: true,
        } => {
            return posts(
                out,
                &client.feed_page(account, jid.as_deref(), None, *limit)?,
            );
        }
        _ => {}
    }
    connect_synced(client, account, Duration::from_secs(60)).await?;
    let r = online(client, out, account, cmd).await;
    client.disconnect_all().await;
    r
}

async fn online(client: &Client, out: &Output, account: &str, cmd: BlogCmd) -> Result<()> {
    match cmd {
        BlogCmd::Post {
            text,
            title,
            audience,
            tags,
            attach,
        } => {
            let mut draft = PostDraft::new(text, audience);
            draft.title = title;
            draft.tags = tags;
            for path in attach {
                let progress = tokio::spawn(super::show_upload_progress(client.events(), out.json));
                // Posts are not end-to-end encrypted: neither are their files.
                let r = client.upload_file(account, &path, false).await;
                progress.abort();
                if !out.json {
                    eprintln!();
                }
                draft.enclosures.push(r?.enclosure());
            }
            let p = client.publish_post(account, draft).await?;
            if out.json {
                return out.line(&p);
            }
            println!("Posted to {} (id {}).", p.audience, p.item_id);
        }
        BlogCmd::List { jid, limit, .. } => {
            let list = match jid {
                Some(j) => client.fetch_posts(account, &j, limit).await?,
                None => {
                    client.refresh_feed(account).await?;
                    client.feed_page(account, None, None, limit)?
                }
            };
            posts(out, &list)?;
        }
        BlogCmd::Edit { id, text } => {
            let p = client.edit_post(account, &id, &text, None).await?;
            if out.json {
                return out.line(&p);
            }
            println!("Edited post {}.", p.item_id);
        }
        BlogCmd::Delete { id } => {
            client.delete_post(account, &id).await?;
            if !out.json {
                println!("Deleted post {id}.");
            }
        }
        BlogCmd::Comment { jid, id, text } => {
            let c = client.comment(account, &jid, &id, &text).await?;
            if out.json {
                return out.line(&c);
            }
            println!("Commented on {jid}'s post {id}.");
        }
        BlogCmd::Comments { jid, id } => {
            let post = match client.find_post(account, &jid, &id)? {
                Some(p) => p,
                None => {
                    client.fetch_posts(account, &jid, 100).await?;
                    client
                        .find_post(account, &jid, &id)?
                        .ok_or_else(|| anyhow!("{jid} has no post {id} that you can read"))?
                }
            };
            let comments = client.fetch_comments(account, post.id).await?;
            if out.json {
                return out.line(&comments);
            }
            if comments.is_empty() {
                println!("No comments yet.");
            }
            for c in &comments {
                print_comment(c);
            }
        }
        BlogCmd::Search { .. } => {}
    }
    Ok(())
}

pub async fn profile(client: &Client, out: &Output, account: &str, cmd: ProfileCmd) -> Result<()> {
    connect_synced(client, account, Duration::from_secs(60)).await?;
    let r = profile_online(client, out, account, cmd).await;
    client.disconnect_all().await;
    r
}

async fn profile_online(
    client: &Client,
    out: &Output,
    account: &str,
    cmd: ProfileCmd,
) -> Result<()> {
    let p = match cmd {
        ProfileCmd::Set {
            nick,
            avatar,
            name,
            bio,
            url,
        } => {
            if nick.is_none()
                && avatar.is_none()
                && name.is_none()
                && bio.is_none()
                && url.is_none()
            {
                return Err(anyhow!(
                    "nothing to change: give --nick, --avatar, --name, --bio or --url"
                ));
            }
            let update = ProfileUpdate {
                nick,
                full_name: name,
                bio,
                url,
                avatar,
            };
            client.set_profile(account, update).await?
        }
        ProfileCmd::Show { jid } => {
            client
                .fetch_profile(account, jid.as_deref().unwrap_or(account))
                .await?
        }
    };
    let avatar_file = client.avatar_path(account, &p.jid)?;
    if out.json {
        #[derive(serde::Serialize)]
        struct Shown<'a> {
            #[serde(flatten)]
            profile: &'a starling_core::store::ProfileRecord,
            avatar_file: Option<String>,
        }
        return out.line(&Shown {
            profile: &p,
            avatar_file: avatar_file.map(|f| f.display().to_string()),
        });
    }
    println!("{}", p.jid);
    for (label, value) in [
        ("Nickname", &p.nick),
        ("Name", &p.full_name),
        ("Bio", &p.bio),
        ("Web", &p.url),
    ] {
        if let Some(v) = value {
            println!("  {label}: {v}");
        }
    }
    match avatar_file {
        Some(f) => println!("  Avatar: {}", f.display()),
        None => println!("  Avatar: none"),
    }
    Ok(())
}
