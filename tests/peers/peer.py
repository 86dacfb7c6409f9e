#!/usr/bin/env python3
"""An independent XMPP peer for Starling's integration tests (slixmpp 1.17).

Usage:
    PEER_PASSWORD=... python peer.py --jid user@localhost --host 127.0.0.1 \
        --port N --ca-file ca.crt [--direct-tls] [--resource R] [--auto-approve]

The password is read from the environment variable PEER_PASSWORD, never argv.
TLS is always on and verified against --ca-file only (STARTTLS by default,
direct TLS with --direct-tls).

Protocol: one JSON object per line on stdin (commands) and stdout (events).
Every command may carry an optional "tag" which is echoed in its "done" event.
Every command ends with exactly one {"event":"done","cmd":CMD,...} event on
success, or one {"event":"error","cmd":CMD,"message":...} event on failure, so
callers can wait for completion instead of sleeping. When the failure is an
XMPP error (IQ error, presence error, IQ timeout) the error event also carries
"condition" and "text".

Commands:
  {"cmd":"send","to":JID,"body":TEXT,"id":ID?,"receipt":bool?,"markable":bool?,
   "type":"chat"?}
      -> {"event":"sent","id":ID} then {"event":"done","cmd":"send","id":ID}
  {"cmd":"correct","to":JID,"body":TEXT,"replace":ORIGINAL_ID,"id":ID?}
      -> sent + done (id = the correction's own id)
  {"cmd":"displayed","to":JID,"id":ID}          XEP-0333 displayed marker
  {"cmd":"chatstate","to":JID,"state":"composing"|"active"|"paused"|...}
  {"cmd":"roster_add","jid":JID,"name":NAME?}   roster set + subscribe
  {"cmd":"approve","jid":JID}                   presence type=subscribed
  {"cmd":"presence","show":S?,"status":T?}      (re)send own presence
  {"cmd":"mam","with":JID?,"max":N?}            query own archive
      -> {"event":"mam_message",...}* then {"event":"mam_done","count":N}
         then done
  {"cmd":"ping"}                                XEP-0199 ping to the server;
      a barrier: every stanza sent before it has been processed by the server
  {"cmd":"raw","xml":STRING}                    send STRING verbatim
  {"cmd":"iq","to":JID,"xml":PAYLOAD,"type"?:"set"|"get"}
                                                send an IQ with a raw payload; done has
                                                result ("result"|"error") and condition
  {"cmd":"http_get","url":URL}                  download a shared file (https, trusting
                                                only --ca-file); done has size, sha256
  {"cmd":"quit"}                                disconnect and exit 0
stdin EOF behaves like quit.

Group chat commands (XEP-0045 and friends; ROOM is a bare room JID):
  {"cmd":"muc_join","room":ROOM,"nick":NICK,"password":PW?,"history":N?,
   "wait":bool?}
      history = <history maxstanzas=N/> (omitted: the server's default).
      wait (default true): done only after our self-presence (status 110)
      and the room subject, so the history has been emitted already; done
      carries room, nick (as assigned by the room), role, affiliation,
      codes, occupant_id, subject and history (the number of delayed
      groupchat messages received while joining). A presence error fails
      the command with its condition. wait=false: done right after sending.
  {"cmd":"muc_leave","room":ROOM}               done (with codes) after our
      own unavailable self-presence
  {"cmd":"muc_send","room":ROOM,"body":TEXT,"id":ID?}
      groupchat message with <origin-id id=ID/>; done carries id
  {"cmd":"muc_correct","room":ROOM,"body":TEXT,"replace":ID,"id":ID?}
      XEP-0308 correction in the room; done carries id
  {"cmd":"muc_pm","room":ROOM,"nick":NICK,"body":TEXT,"id":ID?}
      type=chat to ROOM/NICK with <x xmlns=muc#user/>; done carries id
  {"cmd":"muc_subject","room":ROOM,"subject":TEXT}
  {"cmd":"muc_role","room":ROOM,"nick":NICK,"role":ROLE,"reason":R?}
  {"cmd":"muc_affiliation","room":ROOM,"jid":JID,"affiliation":AFF,"reason":R?}
      muc#admin IQ set; done after the IQ result
  {"cmd":"muc_invite","room":ROOM,"to":JID,"reason":R?}     mediated invite
  {"cmd":"muc_direct_invite","room":ROOM,"to":JID,"reason":R?,"password":PW?}
      XEP-0249 invitation sent to the user
  {"cmd":"muc_decline","room":ROOM,"to":INVITER_JID,"reason":R?}
      mediated decline
  {"cmd":"muc_retract","room":ROOM,"id":TARGET_ID}
      XEP-0424 retraction (<retract xmlns=urn:xmpp:message-retract:1
      id=TARGET_ID/> + <fallback for=...retract:1/> + fallback body + store
      hint); done carries retract (the target) and id (the retraction's own)
  {"cmd":"muc_moderate","room":ROOM,"stanza_id":SID,"reason":R?}
      XEP-0425 as Prosody's mod_muc_moderation (2023) takes it: IQ set with
      <apply-to xmlns=urn:xmpp:fasten:0 id=SID><moderate
      xmlns=urn:xmpp:message-moderate:0><retract
      xmlns=urn:xmpp:message-retract:0/><reason/></moderate></apply-to>
  {"cmd":"muc_configure","room":ROOM,"fields":{VAR:VALUE_OR_LIST,...}}
      fetch the muc#owner form, set these fields, submit; done carries the
      submitted values of these fields (an unknown VAR is an error)
  {"cmd":"muc_destroy","room":ROOM,"reason":R?}
  {"cmd":"muc_occupants","room":ROOM}
      done carries nick (ours) and occupants: [{nick, role, affiliation,
      jid, occupant_id}] as tracked from presences (ourselves included);
      an error when we are not in the room (never joined, left, kicked)
  {"cmd":"muc_ping","room":ROOM}                XEP-0410 self-ping to
      ROOM/our-last-nick; done carries result ("joined" when the IQ result
      came back, or when the error is service-unavailable or
      feature-not-implemented, which XEP-0410 also counts as joined; the
      error condition otherwise) and condition (the raw error, or null)
  {"cmd":"muc_mam","room":ROOM,"max":N?}        query the room's archive
      -> {"event":"muc_mam_message",...}* then done with count
  {"cmd":"bookmarks_publish","room":ROOM,"name":NAME?,"nick":NICK?,
   "autojoin":bool}
      XEP-0402: publish <conference xmlns=urn:xmpp:bookmarks:1/> as item
      ROOM on the PEP node urn:xmpp:bookmarks:1 with publish-options
      persist_items=true, max_items=max, send_last_published_item=never,
      access_model=whitelist
  {"cmd":"bookmarks_retract","room":ROOM}       retract item ROOM (notify)
  {"cmd":"bookmarks_get"}                       done carries bookmarks:
      [{room, autojoin, name, nick, password}] ([] when the node is missing)

PEP and social commands (XEP-0060/0163, XEP-0277, XEP-0084, XEP-0172; in
social.py). ITEM = {"id","publisher","xml"}: xml is the item's payload as a
raw XML string (null when the item has none); publisher is null unless the
service says. OPTIONS = {FIELD:VALUE,...}, e.g. {"pubsub#access_model":
"open","pubsub#max_items":"max"} (bools become "true"/"false"). An IQ error
fails the command with its condition (e.g. forbidden, item-not-found).
  {"cmd":"pep_publish","node":NODE,"id":ITEM_ID?,"xml":PAYLOAD_XML,
   "options":OPTIONS?,"to":JID?}
      publish one item (payload parsed from xml) with publish-options, to
      our own PEP or, with to, another account's PEP service (e.g. a comment
      on someone else's comments node); done carries node and id (the one
      the server reports, else ours)
  {"cmd":"pep_retract","node":NODE,"id":ITEM_ID,"notify":bool?,"to":JID?}
      notify defaults to true
  {"cmd":"pep_items","jid":JID,"node":NODE,"max":N?}
      done carries jid, node and items: [ITEM]
  {"cmd":"pep_subscribe","jid":JID,"node":NODE}
      done carries node and subscription (the state the service reports)
  {"cmd":"pep_create","node":NODE,"options":OPTIONS?,"jid":JID?}
      create a node (on our own PEP unless jid) with a node_config form
  {"cmd":"avatar_publish","file":PATH}
      XEP-0084: data (item id = sha1 of the bytes) then metadata (<info id
      bytes type width? height?/>; type from the magic bytes, width/height
      for PNG and GIF), both with access_model=open; done carries id, type,
      bytes, width, height
  {"cmd":"avatar_fetch","jid":JID}
      latest metadata item, then the data item of its (first non-url) info
      id; done carries jid, id, type, bytes (decoded length),
      advertised_bytes, sha1_ok (sha1 of the data == id) and b64 (the data);
      an error when there is no metadata item or the metadata is empty
  {"cmd":"nick_publish","nick":NICK,"options":OPTIONS?}
      <nick xmlns=http://jabber.org/protocol/nick/>; done carries id
  {"cmd":"blog_post","id":ID?,"title":T?,"content":C,
   "content_type":"text"|"html"|"xhtml"?,"tags":[TAG]?,"comments":bool?,
   "author":NAME?}
      XEP-0277 Atom entry published as item ID (default: random) on our
      urn:xmpp:microblog:0 with access_model=open, max_items=max: atom:id
      tag:DOMAIN,2026:posts-ID, author name (default: our localpart) + uri
      xmpp:BAREJID, published = updated = now (RFC 3339 UTC), title if
      given, content with its type (xhtml: C is an XHTML fragment, put in
      <div xmlns=http://www.w3.org/1999/xhtml/>), a category per tag, a
      rel=alternate link and, with comments=true, <link rel=replies
      title=comments href=xmpp:BAREJID?;node=urn%3Axmpp%3Amicroblog%3A0%3A
      comments%2FID/>; done carries id and atom_id
  {"cmd":"blog_comment","jid":AUTHOR_JID,"post":POST_ID,"content":TEXT,
   "id":ID?}
      Atom entry by us (atom:id tag:DOMAIN,2026:comments-ID, text content)
      published to AUTHOR_JID's PEP node urn:xmpp:microblog:0:comments/POST_ID
      (which must exist and accept our publish, e.g. created by the author
      with pep_create publish_model=open); done carries id and node

OMEMO commands (XEP-0384 via slixmpp-omemo; in omemo_peer.py). NS = "oldmemo"
(eu.siacs.conversations.axolotl, body only) or "twomemo" (urn:xmpp:omemo:2,
the body in a XEP-0420 envelope <envelope xmlns=urn:xmpp:sce:1><content><body
xmlns=jabber:client/></content><rpad/><to jid/><from jid/></envelope>, from =
our bare JID, to = the recipient's bare JID or the room). A fingerprint is 64
hex chars, the Curve25519 form of the identity key (one identity for both
namespaces). Trust is blind (BTBV) unless omemo_trust was used for a JID.
Before encrypting, the device lists of the recipients and our own are always
downloaded (refresh=false skips that), so nothing depends on PEP notification
timing. Outgoing: <origin-id id=ID/>, fallback <body/>, the <encrypted/>
element(s), <encryption xmlns=urn:xmpp:eme:0/> per namespace, <store/> hint.
  {"cmd":"omemo_enable","namespaces":[NS]?,"storage":PATH?,"label":TEXT?}
      load the plugin (default: both namespaces, twomemo preferred), create
      or load our device, publish bundles (access_model=open, 100 pre-keys)
      and device lists, re-announce caps with +notify for the device list
      nodes; storage = JSON file to keep the device across restarts
      (default: in memory). done carries jid, device_id, fingerprint,
      identity_key (base64, as python-omemo stores it), namespaces, label
      and bundles: {NS: {spk_id, prekeys}}. An error when already enabled,
      and for any label (python-omemo 2.1's backends support none).
  {"cmd":"omemo_send","to":JID,"body":TEXT,"namespace":NS?,"id":ID?,
   "type":"chat"?,"fallback":TEXT|null?,"refresh":bool?}
      encrypt for every device of JID and our other devices, in NS only
      (devices without it are skipped; an error if JID has none), or with
      namespace null per device: twomemo if it has it, else oldmemo (both
      elements may then be in one stanza). fallback null: no <body/>. done
      carries id, namespace (null if several), namespaces, recipients:
      [{jid, device_id, namespace, kex}] (kex = the key is a key exchange,
      i.e. a new unconfirmed session), errors: [{jid, device_id, namespace,
      message}] (devices skipped, e.g. bundle missing)
  {"cmd":"omemo_muc_send","room":ROOM,"body":TEXT,"namespace":NS?,"id":ID?,
   "fallback":TEXT|null?,"skip_missing":bool?,"refresh":bool?}
      type=groupchat to a joined room, encrypted for the room's owners,
      admins and members (the affiliation lists, which Prosody gives members
      of members-only rooms with whois=anyone) and our other devices.
      Members without a usable device are skipped (skip_missing=false: an
      error). done carries what omemo_send's does plus room, members (the
      bare JIDs encrypted for) and skipped. The plaintext is kept by id for
      the room's reflection (we never encrypt for our own device).
  {"cmd":"omemo_devices","jid":JID,"refresh":bool?}
      download JID's device lists (ours too); done carries jid, ids: {NS:
      [DEVICE_ID]} (active in that published list) and devices: [{device_id,
      namespaces, fingerprint, trust, label, own}] (those whose bundle could be
      fetched)
  {"cmd":"omemo_refresh"}
      rotate our signed pre-key, top pre-keys up to 100 and republish the
      bundles; done carries what omemo_enable's does plus previous: the old
      bundles summary
  {"cmd":"omemo_trust","jid":JID,"device_id":N,
   "trust":"trusted"|"blindly_trusted"|"undecided"|"distrusted"}
      set the trust of that device's identity; a JID with a manual decision
      leaves BTBV: its new devices make encryption fail
  {"cmd":"omemo_mam","with":JID?,"max":N?}
      query our archive and decrypt every encrypted result (plain ones are
      skipped): omemo_message / omemo_empty / omemo_error events with "mam":
      {archive_id, stamp}; done carries count (encrypted results), decrypted
      and failed. A message already decrypted live fails the second time
      (its keys are gone), and ours are not encrypted for this device.

Events (besides the above):
  {"event":"online","jid":FULLJID}   after the server has processed our
      initial presence and (if it asked) our caps, so PEP notifications
      are routed to us from then on
  {"event":"message","from","to","id","origin_id","stanza_id","body","type",
   "oob" (XEP-0066 url or null), "file" (XEP-0447: name, media_type, size,
   width, height, thumbnail (its uri), sources; or null),
   "replace"?,"receipt_request","markable","delay","thread"?}
      only for messages with a <body/> (slixmpp's "message"), and not for
      the group chat / bookmark stanzas below, which have their own events,
      nor, after omemo_enable, for OMEMO messages (omemo_* events; without
      omemo_enable the peer is a client without OMEMO and reports their
      fallback body here)
  {"event":"receipt","from","id"}
  {"event":"displayed","from","id"} / {"event":"marker_received","from","id"}
  {"event":"chatstate","from","state"}   (also from ROOM/NICK in rooms)
  {"event":"subscribe","from"}
  {"event":"presence","from","type","show"?,"status"?}
      not for occupant presences (those with <x xmlns=muc#user/>); a room's
      presence error (failed join or nick change) is a "presence" with
      type "error" (and fails the muc_join)
  {"event":"carbon_sent"|"carbon_received","from","to","id","origin_id","body"}
      (after omemo_enable, not for OMEMO ones: omemo_* with "carbon")
  {"event":"message_error","from","id","condition","text"}
  {"event":"resumed"}                           stream management resumption
  {"event":"error","message",...}
  {"event":"disconnected"}

Group chat events:
  {"event":"groupchat","room","nick","id","origin_id","stanza_id","occupant_id",
   "body","delay","replace","retract","moderated","codes","oob","file"}
      every type=groupchat message except a subject change (so also
      body-less ones: chat states, moderation announcements, status codes).
      nick is null for messages from the room itself; stanza_id is the one
      with by=ROOM; delay is true for history; replace = XEP-0308 target;
      retract = target id of a retraction (urn:xmpp:message-retract:1, or
      the :0 <apply-to/> fastening); moderated = {"id" (the moderated
      stanza-id, null on an archived tombstone), "by", "reason"} for a
      moderation announcement (XEP-0425 :0 fastening or :1) or tombstone;
      codes = muc#user status codes (e.g. [104] after a configuration change)
  {"event":"subject","room","subject","nick"}    subject change, and the
      subject sent on join ("" when none is set)
  {"event":"muc_presence","room","nick","type":"available"|"unavailable",
   "role","affiliation","jid","occupant_id","codes":[int],"new_nick",
   "reason","actor","destroyed"}
      every occupant presence, ours included (codes contain 110); new_nick
      with 303; reason from <item/> or <destroy/>; actor = nick (or JID)
  {"event":"muc_invite","room","from","reason","password",
   "kind":"mediated"|"direct"}
      from = the inviter (for mediated invites Prosody gives the real JID
      in non-anonymous rooms, ROOM/NICK otherwise); null reason when empty
  {"event":"muc_decline","room","from","reason"}
  {"event":"muc_pm","room","nick","id","origin_id","occupant_id","body"}
      private message from an occupant (never also a "message" event)
  {"event":"muc_mam_message","room","archive_id","from","nick","id",
   "origin_id","occupant_id","body","replace","retract","moderated","stamp"}
  {"event":"bookmarks_event","items":[{room, autojoin, name, nick,
   password}],"retracted":[ROOM]}
      PEP notification for urn:xmpp:bookmarks:1 (we advertise
      urn:xmpp:bookmarks:1+notify in disco#info and caps)
  {"event":"pep_event","from":BARE_JID,"node":NODE,"items":[ITEM],
   "retracted":[ITEM_ID],"purged":bool,"deleted":bool}
      every incoming pubsub#event message (bookmarks too, besides
      bookmarks_event); we advertise +notify for urn:xmpp:microblog:0,
      urn:xmpp:avatar:metadata and http://jabber.org/protocol/nick, so a
      contact's PEP sends us those (Prosody: only to contacts allowed by the
      node's access model, after our caps were queried)

OMEMO events (after omemo_enable; every message with an OMEMO <encrypted/>
element, chat, groupchat, normal, or inside a carbon, gives exactly one of
them, and no message / groupchat / carbon_* event):
  {"event":"omemo_message","from","to","id","origin_id","type","carbon",
   "delay","room"?,"nick"?,"fallback_body","body","namespace":NS,"device_id",
   "sender","fingerprint","trust","sce","reflection","mam"?}
      decrypted. from = the stanza's (a full JID, or ROOM/NICK; for carbons
      the inner message's), carbon = null | "sent" | "received", sender =
      the real bare JID (groupchat: from the occupant's presence), device_id
      / fingerprint / trust (e.g. BLINDLY_TRUSTED, UNDECIDED) of the sending
      device, fallback_body = the outer <body/> (or null), sce = null for
      oldmemo, for twomemo {from, to, time, rpad (bool), content: [the
      <content/> children as {ns}name]}; body = null when the content has no
      jabber:client body. reflection = true for our own groupchat message
      coming back from the room (body from our cache, our device).
      Checks: SCE <from/> must be the sender, <to/> us (or the room), and a
      groupchat envelope must have <to/>; else omemo_error.
  {"event":"omemo_empty", same fields without body/sce/fallback_body}
      an OMEMO message without payload: python-omemo sends one (type normal,
      to the bare JID) after decrypting a key exchange, to complete the
      session, and as a heartbeat after 53 messages one way
  {"event":"omemo_error","from","to","id","origin_id","type","carbon",
   "delay","room"?,"nick"?,"mam"?,"namespaces":[NS],"device_id":SENDER_SID,
   "error":EXCEPTION_CLASS,"message"}
      could not decrypt (MessageNotForUs, NoSession, SenderNotFound,
      DecryptionFailed, a bad envelope, a namespace we did not load, ...)
  {"event":"omemo_blind_trust","devices":[{jid, device_id, fingerprint}]}
      devices newly trusted blindly (when we first encrypt for them)
  Our own OMEMO stanzas echoed to us by the server (python-omemo's empty
  messages go to every device of a JID, ours included) are ignored. OMEMO
  groupchat history is not counted in muc_join's "history".
"""

from __future__ import annotations

import argparse
import hashlib
import ssl
import urllib.request
import asyncio
import json
import logging
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError, PresenceError, XMPPError
from slixmpp.plugins.xep_0402.stanza import Conference
from slixmpp.stanza import Message, Presence
from slixmpp.xmlstream import StanzaBase
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import omemo_peer
import social

SID_NS = "urn:xmpp:sid:0"
DELAY_NS = "urn:xmpp:delay"
HINTS_NS = "urn:xmpp:hints"
CHAT_STATES = ("active", "composing", "paused", "inactive", "gone")

CORRECT_NS = "urn:xmpp:message-correct:0"
MUC_USER_NS = "http://jabber.org/protocol/muc#user"
OCCUPANT_ID_NS = "urn:xmpp:occupant-id:0"
DIRECT_INVITE_NS = "jabber:x:conference"
RETRACT_NS = "urn:xmpp:message-retract:1"
RETRACT_V0_NS = "urn:xmpp:message-retract:0"
FASTEN_NS = "urn:xmpp:fasten:0"
OOB_NS = "jabber:x:oob"
SFS_NS = "urn:xmpp:sfs:0"
FILE_NS = "urn:xmpp:file:metadata:0"
THUMBS_NS = "urn:xmpp:thumbs:1"
URL_DATA_NS = "http://jabber.org/protocol/url-data"
MODERATE_NS = "urn:xmpp:message-moderate:1"
MODERATE_V0_NS = "urn:xmpp:message-moderate:0"
FALLBACK_NS = "urn:xmpp:fallback:0"
BOOKMARKS_NS = "urn:xmpp:bookmarks:1"
PUBSUB_NS = "http://jabber.org/protocol/pubsub"
PUBSUB_EVENT_NS = "http://jabber.org/protocol/pubsub#event"
PUBLISH_OPTIONS_NS = "http://jabber.org/protocol/pubsub#publish-options"
BOOKMARK_PUBLISH_OPTIONS = {
    "pubsub#persist_items": "true",
    "pubsub#max_items": "max",
    "pubsub#send_last_published_item": "never",
    "pubsub#access_model": "whitelist",
}
RETRACT_FALLBACK = (
    "This person attempted to retract a previous message, but your client does not support it."
)
# XEP-0410: these errors come from our own client, so we are still joined.
SELF_PING_JOINED = ("service-unavailable", "feature-not-implemented")
# Bounds for one IQ round trip and for one wait while joining/leaving a room;
# small enough that a command with two of them fails (with a useful message)
# before tests/support's 20 s COMMAND_TIMEOUT.
IQ_TIMEOUT = 8
MUC_TIMEOUT = 8

T = TypeVar("T")
Json = dict[str, Any]


def emit(event: str, **fields: Any) -> None:
    """Write one event as a JSON line on stdout, flushed."""
    obj = {"event": event}
    obj.update(fields)
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def text_or_none(value: Any) -> str | None:
    s = str(value) if value is not None else ""
    return s if s else None


def qname(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def attr(el: ET.Element | None, name: str) -> str | None:
    return el.get(name) if el is not None else None


def child_text(el: ET.Element | None, ns: str, name: str) -> str | None:
    """Text of el's first child {ns}name; None when missing or empty."""
    if el is None:
        return None
    c = el.find(qname(ns, name))
    return (c.text or None) if c is not None else None


def resolve(fut: asyncio.Future[T] | None, value: T) -> None:
    """Completes fut unless it is already done (or was cancelled by a timeout)."""
    if fut is not None and not fut.done():
        fut.set_result(value)


def status_codes(x: ET.Element | None) -> list[int]:
    if x is None:
        return []
    codes = (s.get("code", "") for s in x.findall(qname(MUC_USER_NS, "status")))
    return sorted(int(c) for c in codes if c.isdigit())


def stanza_id_by(xml: ET.Element, by: str) -> str | None:
    """The XEP-0359 stanza-id that `by` (a bare JID) assigned, if any."""
    for el in xml.findall(qname(SID_NS, "stanza-id")):
        if el.get("by") == by:
            return el.get("id")
    return None


def occupant_id(xml: ET.Element) -> str | None:
    return attr(xml.find(qname(OCCUPANT_ID_NS, "occupant-id")), "id")


def retraction_target(xml: ET.Element) -> str | None:
    """The id a sender retracts: XEP-0424 v1 <retract id/>, or v0 fastening."""
    retract = xml.find(qname(RETRACT_NS, "retract"))
    if retract is not None and retract.find(qname(MODERATE_NS, "moderated")) is None:
        return retract.get("id")
    apply_to = xml.find(qname(FASTEN_NS, "apply-to"))
    if apply_to is not None and apply_to.find(qname(RETRACT_V0_NS, "retract")) is not None:
        return apply_to.get("id")
    return None


def moderation(xml: ET.Element) -> Json | None:
    """XEP-0425: a moderation announcement (v0 fastening or v1) or a v0 tombstone."""
    apply_to = xml.find(qname(FASTEN_NS, "apply-to"))
    if apply_to is not None:
        moderated = apply_to.find(qname(MODERATE_V0_NS, "moderated"))
        if moderated is not None:
            return {
                "id": apply_to.get("id"),
                "by": moderated.get("by"),
                "reason": child_text(moderated, MODERATE_V0_NS, "reason"),
            }
    retract = xml.find(qname(RETRACT_NS, "retract"))
    if retract is not None:
        moderated = retract.find(qname(MODERATE_NS, "moderated"))
        if moderated is not None:
            return {
                "id": retract.get("id"),
                "by": moderated.get("by"),
                "reason": child_text(retract, RETRACT_NS, "reason"),
            }
    tombstone = xml.find(qname(MODERATE_V0_NS, "moderated"))
    if tombstone is not None:
        return {
            "id": None,
            "by": tombstone.get("by"),
            "reason": child_text(tombstone, MODERATE_V0_NS, "reason"),
        }
    return None


def shared_file(xml: ET.Element) -> Json | None:
    """XEP-0447 file sharing with XEP-0446 metadata, as Dino reads it."""
    sfs = xml.find(f"{{{SFS_NS}}}file-sharing")
    if sfs is None:
        return None
    meta = sfs.find(f"{{{FILE_NS}}}file")
    thumb = meta.find(f"{{{THUMBS_NS}}}thumbnail") if meta is not None else None
    sources = sfs.find(f"{{{SFS_NS}}}sources")

    def number(name: str) -> int | None:
        text = child_text(meta, FILE_NS, name)
        return int(text) if text is not None else None

    return {
        "name": child_text(meta, FILE_NS, "name"),
        "media_type": child_text(meta, FILE_NS, "media-type"),
        "size": number("size"),
        "width": number("width"),
        "height": number("height"),
        "thumbnail": attr(thumb, "uri"),
        "sources": [
            u.get("target")
            for u in (sources if sources is not None else [])
            if u.tag == f"{{{URL_DATA_NS}}}url-data"
        ],
    }


def bookmark(room: str | None, conference: ET.Element | None) -> Json:
    """One XEP-0402 bookmark as JSON (item id = room JID)."""
    autojoin = attr(conference, "autojoin") in ("true", "1")
    return {
        "room": room,
        "autojoin": autojoin,
        "name": attr(conference, "name"),
        "nick": child_text(conference, BOOKMARKS_NS, "nick"),
        "password": child_text(conference, BOOKMARKS_NS, "password"),
    }


@dataclass
class Occupant:
    nick: str
    role: str | None
    affiliation: str | None
    jid: str | None
    occupant_id: str | None


def new_future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


async def wait_muc(fut: asyncio.Future[T], what: str) -> T:
    """Awaits fut for at most MUC_TIMEOUT seconds."""
    try:
        return await asyncio.wait_for(fut, MUC_TIMEOUT)
    except asyncio.TimeoutError:
        raise TimeoutError(f"no {what} within {MUC_TIMEOUT} s") from None


@dataclass
class Room:
    """A room we joined or are joining, tracked from its presences."""

    jid: str
    nick: str
    joined: bool = False
    history: int = 0  # delayed messages received before the subject
    occupants: dict[str, Occupant] = field(default_factory=dict)
    # Our self-presence (status 110) or a presence error.
    self_presence: asyncio.Future[Presence] = field(default_factory=new_future)
    # The subject message that ends the join.
    subject: asyncio.Future[str] = field(default_factory=new_future)
    # Our unavailable self-presence.
    left: asyncio.Future[Presence] = field(default_factory=new_future)


CommandHandler = Callable[[Json, Json], Awaitable[None]]


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid: str, password: str, auto_approve: bool) -> None:
        super().__init__(jid, password)
        self.quitting = False
        self.exit_code = 0
        self.online = asyncio.Event()
        self.gone = asyncio.Event()
        # Group chat state, by bare room JID.
        self.muc_rooms: dict[str, Room] = {}
        self.muc_nicks: dict[str, str] = {}  # last nick per room, kept after leaving

        for plugin in (
            "xep_0004",  # data forms (room configuration, publish-options)
            "xep_0030",  # service discovery
            "xep_0045",  # multi-user chat
            "xep_0059",  # result set management (MAM paging)
            "xep_0060",  # pubsub (PEP bookmarks)
            "xep_0085",  # chat states
            "xep_0184",  # delivery receipts
            "xep_0198",  # stream management
            "xep_0199",  # ping
            "xep_0203",  # delayed delivery
            "xep_0249",  # direct MUC invitations
            "xep_0280",  # carbons
            "xep_0297",  # forwarding
            "xep_0308",  # last message correction
            "xep_0313",  # MAM
            "xep_0333",  # chat markers
            "xep_0334",  # processing hints
            "xep_0359",  # unique and stable ids
            "xep_0402",  # PEP native bookmarks
        ):
            self.register_plugin(plugin)
        try:  # optional: entity capabilities
            self.register_plugin("xep_0115")
        except Exception as exc:  # pragma: no cover - depends on install
            logging.warning("xep_0115 not available: %s", exc)
        self.plugin["xep_0184"].auto_ack = True
        self.plugin["xep_0184"].auto_request = False

        # Subscriptions are decided by the test ("approve"), unless asked.
        self.roster.auto_authorize = True if auto_approve else None
        self.roster.auto_subscribe = False

        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("session_resumed", lambda _e: emit("resumed"))
        self.add_event_handler("message", self.on_message)
        # slixmpp fires "message" only for messages with a <body/>.
        self.register_handler(
            Callback(
                "Peer body-less messages",
                MatchXPath(f"{{{self.default_ns}}}message"),
                self.on_bodyless_message,
            )
        )
        self.add_event_handler("receipt_received", self.on_receipt)
        self.add_event_handler("marker_displayed", self.on_displayed)
        self.add_event_handler("marker_received", self.on_marker_received)
        self.add_event_handler("chatstate", self.on_chatstate)
        self.add_event_handler("carbon_received", self.on_carbon_received)
        self.add_event_handler("carbon_sent", self.on_carbon_sent)
        self.add_event_handler("message_error", self.on_message_error)
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("presence_subscribe", self.on_subscribe)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("disconnected", self.on_disconnected)

        self.commands: dict[str, CommandHandler] = {
            "muc_join": self.muc_join,
            "muc_leave": self.muc_leave,
            "muc_send": self.muc_send,
            "muc_correct": self.muc_correct,
            "muc_pm": self.muc_pm,
            "muc_subject": self.muc_subject,
            "muc_role": self.muc_role,
            "muc_affiliation": self.muc_affiliation,
            "muc_invite": self.muc_invite,
            "muc_direct_invite": self.muc_direct_invite,
            "muc_decline": self.muc_decline,
            "muc_retract": self.muc_retract,
            "muc_moderate": self.muc_moderate,
            "muc_configure": self.muc_configure,
            "muc_destroy": self.muc_destroy,
            "muc_occupants": self.muc_occupants,
            "muc_ping": self.muc_ping,
            "muc_mam": self.muc_mam,
            "bookmarks_publish": self.bookmarks_publish,
            "bookmarks_retract": self.bookmarks_retract,
            "bookmarks_get": self.bookmarks_get,
        }
        # PEP, microblog, avatar and nick commands (social.py).
        self.social = social.Social(self, emit, IQ_TIMEOUT)
        self.commands.update(self.social.commands())
        # OMEMO commands; encrypted messages go to it first (omemo_peer.py).
        self.omemo = omemo_peer.Omemo(self, emit, IQ_TIMEOUT)
        self.commands.update(self.omemo.commands())

    # ----- lifecycle -------------------------------------------------------

    async def on_session_start(self, _event: Any) -> None:
        try:
            await self.get_roster()
            await self.plugin["xep_0280"].enable()
            await self.advertise_features()
            self.send_presence()
            # Barrier: after two round trips the server has processed our
            # presence and, when it asked for our caps (disco#info), our
            # reply; PEP notifications (bookmarks_event) reach us from now on.
            for _ in range(2):
                await self.plugin["xep_0199"].ping(timeout=IQ_TIMEOUT)
        except Exception as exc:
            emit("error", message=f"session start failed: {exc!r}")
        emit("online", jid=str(self.boundjid.full))
        self.online.set()

    async def advertise_features(self) -> None:
        """Adds our extra disco#info features and recomputes the caps hash
        that goes into our presence (slixmpp computes none by itself)."""
        await self.plugin["xep_0030"].add_feature(f"{BOOKMARKS_NS}+notify")
        for node in social.NOTIFY_NODES:
            await self.plugin["xep_0030"].add_feature(f"{node}+notify")
        caps = self.plugin.get("xep_0115", None)
        if caps is not None:
            await caps.update_caps(broadcast=False)

    def on_failed_auth(self, _event: Any) -> None:
        emit("error", message="authentication failed")
        self.fatal()

    def on_connection_failed(self, exc: Any) -> None:
        emit("error", message=f"connection failed: {exc}")
        self.fatal()

    def fatal(self) -> None:
        self.exit_code = 1
        self.quitting = True
        self.abort()
        self.gone.set()

    def on_disconnected(self, _reason: Any) -> None:
        emit("disconnected")
        if not self.quitting:
            self.exit_code = 1
        self.gone.set()

    # ----- incoming --------------------------------------------------------

    def stanza_id_for_me(self, msg: Message) -> str | None:
        me = self.boundjid.bare
        for el in msg.xml.findall(f"{{{SID_NS}}}stanza-id"):
            if el.get("by") == me:
                return el.get("id")
        return None

    def on_message(self, msg: Message) -> None:
        if msg["type"] == "error":
            return  # reported by on_message_error
        if self.omemo.claim(msg):
            return
        if self.on_muc_or_pep_message(msg):
            return
        replace = msg.xml.find("{urn:xmpp:message-correct:0}replace")
        origin = msg.xml.find(f"{{{SID_NS}}}origin-id")
        emit(
            "message",
            **{
                "from": str(msg["from"]),
                "to": str(msg["to"]),
                "id": text_or_none(msg["id"]),
                "origin_id": origin.get("id") if origin is not None else None,
                "stanza_id": self.stanza_id_for_me(msg),
                "type": msg["type"],
                "body": msg["body"],
                "replace": replace.get("id") if replace is not None else None,
                "receipt_request": msg.xml.find("{urn:xmpp:receipts}request")
                is not None,
                "markable": msg.xml.find("{urn:xmpp:chat-markers:0}markable")
                is not None,
                "delay": msg.xml.find(f"{{{DELAY_NS}}}delay") is not None,
                "thread": text_or_none(msg["thread"]),
                "oob": child_text(msg.xml.find(f"{{{OOB_NS}}}x"), OOB_NS, "url"),
                "file": shared_file(msg.xml),
            },
        )

    def on_receipt(self, msg: Message) -> None:
        emit("receipt", **{"from": str(msg["from"]), "id": msg["receipt"]})

    def on_displayed(self, msg: Message) -> None:
        emit("displayed", **{"from": str(msg["from"]), "id": msg["displayed"]["id"]})

    def on_marker_received(self, msg: Message) -> None:
        emit(
            "marker_received",
            **{"from": str(msg["from"]), "id": msg["received"]["id"]},
        )

    def on_chatstate(self, msg: Message) -> None:
        emit("chatstate", **{"from": str(msg["from"]), "state": msg["chat_state"]})

    def carbon_fields(self, inner: Message) -> dict[str, Any]:
        origin = inner.xml.find(f"{{{SID_NS}}}origin-id")
        return {
            "from": str(inner["from"]),
            "to": str(inner["to"]),
            "id": text_or_none(inner["id"]),
            "origin_id": origin.get("id") if origin is not None else None,
            "body": inner["body"] or None,
        }

    def on_carbon_received(self, msg: Message) -> None:
        if self.omemo.claim(msg["carbon_received"], "received"):
            return
        emit("carbon_received", **self.carbon_fields(msg["carbon_received"]))

    def on_carbon_sent(self, msg: Message) -> None:
        if self.omemo.claim(msg["carbon_sent"], "sent"):
            return
        emit("carbon_sent", **self.carbon_fields(msg["carbon_sent"]))

    def on_message_error(self, msg: Message) -> None:
        emit(
            "message_error",
            **{
                "from": str(msg["from"]),
                "id": text_or_none(msg["id"]),
                "condition": msg["error"]["condition"],
                "text": msg["error"]["text"],
            },
        )

    def on_presence(self, pres: Presence) -> None:
        x = pres.xml.find(qname(MUC_USER_NS, "x"))
        if x is not None and pres["from"].resource:
            self.on_muc_presence(pres, x)
            return
        room = self.muc_rooms.get(pres["from"].bare)
        if room is not None and pres.xml.get("type") == "error":  # no muc#user x
            if not room.joined:  # the join failed; else e.g. a nick change did
                del self.muc_rooms[room.jid]
            resolve(room.self_presence, pres)
        fields: dict[str, Any] = {
            "from": str(pres["from"]),
            "type": pres.xml.get("type", "available"),
        }
        if pres["show"]:
            fields["show"] = pres["show"]
        if pres["status"]:
            fields["status"] = pres["status"]
        emit("presence", **fields)

    def on_subscribe(self, pres: Presence) -> None:
        emit("subscribe", **{"from": str(pres["from"].bare)})

    # ----- incoming: group chat and bookmarks ------------------------------

    def on_bodyless_message(self, msg: StanzaBase) -> None:
        if not isinstance(msg, Message) or msg["type"] == "error":
            return  # errors are reported by on_message_error
        if msg.xml.find(qname(msg.namespace, "body")) is None:  # else: on_message
            if not self.omemo.claim(msg):
                self.on_muc_or_pep_message(msg)

    def on_muc_or_pep_message(self, msg: Message) -> bool:
        """Emits the group chat / bookmarks / pep_event event for msg, if it is one."""
        xml = msg.xml
        sender = msg["from"]
        if msg["type"] == "groupchat":
            self.on_groupchat(msg)
            return True
        x = xml.find(qname(MUC_USER_NS, "x"))
        if x is not None:
            invite = x.find(qname(MUC_USER_NS, "invite"))
            decline = x.find(qname(MUC_USER_NS, "decline"))
            if invite is not None:  # Prosody adds a jabber:x:conference x too
                emit(
                    "muc_invite",
                    **{
                        "room": str(sender.bare),
                        "from": invite.get("from"),
                        "reason": child_text(invite, MUC_USER_NS, "reason"),
                        "password": child_text(x, MUC_USER_NS, "password"),
                        "kind": "mediated",
                    },
                )
                return True
            if decline is not None:
                emit(
                    "muc_decline",
                    **{
                        "room": str(sender.bare),
                        "from": decline.get("from"),
                        "reason": child_text(decline, MUC_USER_NS, "reason"),
                    },
                )
                return True
            if sender.resource:
                origin = xml.find(qname(SID_NS, "origin-id"))
                emit(
                    "muc_pm",
                    room=str(sender.bare),
                    nick=sender.resource,
                    id=text_or_none(msg["id"]),
                    origin_id=attr(origin, "id"),
                    occupant_id=occupant_id(xml),
                    body=msg["body"] or None,
                )
                return True
        direct = xml.find(qname(DIRECT_INVITE_NS, "x"))
        if direct is not None:
            emit(
                "muc_invite",
                **{
                    "room": direct.get("jid"),
                    "from": str(sender),
                    "reason": direct.get("reason") or None,
                    "password": direct.get("password") or None,
                    "kind": "direct",
                },
            )
            return True
        event = xml.find(qname(PUBSUB_EVENT_NS, "event"))
        if event is None:
            return False
        self.social.on_pubsub_event(sender, event)
        items = event.find(qname(PUBSUB_EVENT_NS, "items"))
        if items is not None and items.get("node") == BOOKMARKS_NS:
            emit(
                "bookmarks_event",
                items=[
                    bookmark(item.get("id"), item.find(qname(BOOKMARKS_NS, "conference")))
                    for item in items.findall(qname(PUBSUB_EVENT_NS, "item"))
                ],
                retracted=[r.get("id") for r in items.findall(qname(PUBSUB_EVENT_NS, "retract"))],
            )
        return True

    def on_groupchat(self, msg: Message) -> None:
        xml = msg.xml
        room_jid = str(msg["from"].bare)
        nick = msg["from"].resource or None
        room = self.muc_rooms.get(room_jid)
        body = xml.find(qname(msg.namespace, "body"))
        subject = xml.find(qname(msg.namespace, "subject"))
        if subject is not None and body is None:
            emit("subject", room=room_jid, subject=subject.text or "", nick=nick)
            if room is not None:
                resolve(room.subject, subject.text or "")
            return
        delayed = xml.find(qname(DELAY_NS, "delay")) is not None
        if room is not None and delayed and not room.subject.done():
            room.history += 1
        origin = xml.find(qname(SID_NS, "origin-id"))
        emit(
            "groupchat",
            room=room_jid,
            nick=nick,
            id=text_or_none(msg["id"]),
            origin_id=attr(origin, "id"),
            stanza_id=stanza_id_by(xml, room_jid),
            occupant_id=occupant_id(xml),
            body=(body.text or "") if body is not None else None,
            delay=delayed,
            replace=attr(xml.find(qname(CORRECT_NS, "replace")), "id"),
            retract=retraction_target(xml),
            moderated=moderation(xml),
            codes=status_codes(xml.find(qname(MUC_USER_NS, "x"))),
            oob=child_text(xml.find(qname(OOB_NS, "x")), OOB_NS, "url"),
            file=shared_file(xml),
        )

    def on_muc_presence(self, pres: Presence, x: ET.Element) -> None:
        room_jid = str(pres["from"].bare)
        nick = pres["from"].resource
        ptype = pres.xml.get("type", "available")
        item = x.find(qname(MUC_USER_NS, "item"))
        actor = item.find(qname(MUC_USER_NS, "actor")) if item is not None else None
        destroy = x.find(qname(MUC_USER_NS, "destroy"))
        codes = status_codes(x)
        occupant = Occupant(
            nick=nick,
            role=attr(item, "role"),
            affiliation=attr(item, "affiliation"),
            jid=attr(item, "jid"),
            occupant_id=occupant_id(pres.xml),
        )
        new_nick = attr(item, "nick") if 303 in codes else None
        reason = child_text(item, MUC_USER_NS, "reason") or child_text(
            destroy, MUC_USER_NS, "reason"
        )
        emit(
            "muc_presence",
            room=room_jid,
            nick=nick,
            type=ptype,
            role=occupant.role,
            affiliation=occupant.affiliation,
            jid=occupant.jid,
            occupant_id=occupant.occupant_id,
            codes=codes,
            new_nick=new_nick,
            reason=reason,
            actor=attr(actor, "nick") or attr(actor, "jid"),
            destroyed=destroy is not None,
        )

        room = self.muc_rooms.get(room_jid)
        if room is None:
            return
        if ptype == "unavailable":
            room.occupants.pop(nick, None)
        else:
            room.occupants[nick] = occupant
        if 110 not in codes:
            return
        if ptype != "unavailable":
            room.joined = True
            room.nick = self.muc_nicks[room_jid] = nick
            resolve(room.self_presence, pres)
        elif new_nick:  # our nick changed; the new self-presence follows
            room.nick = self.muc_nicks[room_jid] = new_nick
        else:  # we left, were kicked or banned, or the room was destroyed
            del self.muc_rooms[room_jid]
            resolve(room.self_presence, pres)
            resolve(room.left, pres)

    # ----- commands --------------------------------------------------------

    def new_message(self, to: str, mtype: str = "chat", msg_id: str | None = None) -> Message:
        msg = self.make_message(mto=JID(to), mtype=mtype)
        msg["id"] = msg_id or uuid.uuid4().hex
        origin = msg.xml.makeelement(f"{{{SID_NS}}}origin-id", {"id": msg["id"]})
        msg.xml.append(origin)
        return msg

    async def run_command(self, cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        done: dict[str, Any] = {"cmd": name}
        if "tag" in cmd:
            done["tag"] = cmd["tag"]

        if name == "send":
            msg = self.new_message(cmd["to"], cmd.get("type", "chat"), cmd.get("id"))
            msg["body"] = cmd["body"]
            if cmd.get("receipt"):
                msg["request_receipt"] = True
            if cmd.get("markable"):
                msg.enable("markable")
            if cmd.get("state"):
                msg["chat_state"] = cmd["state"]
            msg.send()
            emit("sent", id=msg["id"])
            done["id"] = msg["id"]
        elif name == "correct":
            msg = self.new_message(cmd["to"], "chat", cmd.get("id"))
            msg["body"] = cmd["body"]
            msg["replace"]["id"] = cmd["replace"]
            if cmd.get("receipt"):
                msg["request_receipt"] = True
            msg.send()
            emit("sent", id=msg["id"])
            done["id"] = msg["id"]
        elif name == "displayed":
            msg = self.make_message(mto=JID(cmd["to"]), mtype="chat")
            msg["displayed"]["id"] = cmd["id"]
            msg.xml.append(msg.xml.makeelement(f"{{{HINTS_NS}}}store", {}))
            msg.send()
            done["id"] = cmd["id"]
        elif name == "chatstate":
            state = cmd.get("state", "composing")
            if state not in CHAT_STATES:
                raise ValueError(f"unknown chat state {state!r}")
            msg = self.make_message(mto=JID(cmd["to"]), mtype="chat")
            msg["chat_state"] = state
            msg.send()
        elif name == "roster_add":
            jid = JID(cmd["jid"])
            kwargs: dict[str, Any] = {}
            if cmd.get("name"):
                kwargs["name"] = cmd["name"]
            await self.update_roster(jid, **kwargs)
            self.send_presence_subscription(pto=jid, ptype="subscribe")
        elif name == "approve":
            self.send_presence(pto=JID(cmd["jid"]).bare, ptype="subscribed")
        elif name == "presence":
            self.send_presence(pshow=cmd.get("show"), pstatus=cmd.get("status"))
        elif name == "mam":
            with_jid = JID(cmd["with"]) if cmd.get("with") else None
            count = 0
            async for res in self.plugin["xep_0313"].iterate(
                with_jid=with_jid, rsm={"max": int(cmd.get("max", 50))}
            ):
                fwd = res["mam_result"]["forwarded"]
                inner = fwd["stanza"]
                origin = inner.xml.find(f"{{{SID_NS}}}origin-id")
                replace = inner.xml.find("{urn:xmpp:message-correct:0}replace")
                stamp = fwd["delay"]["stamp"]
                emit(
                    "mam_message",
                    **{
                        "archive_id": res["mam_result"]["id"],
                        "from": str(inner["from"]),
                        "to": str(inner["to"]),
                        "id": text_or_none(inner["id"]),
                        "origin_id": origin.get("id") if origin is not None else None,
                        "body": inner["body"] or None,
                        "replace": replace.get("id") if replace is not None else None,
                        "stamp": stamp.isoformat() if stamp else None,
                    },
                )
                count += 1
            emit("mam_done", count=count)
            done["count"] = count
        elif name == "ping":
            await self.plugin["xep_0199"].ping(timeout=10)
        elif name == "raw":
            self.send_raw(cmd["xml"])
        elif name == "iq":
            # An IQ with a raw payload; done says how it was answered.
            iq = self.Iq()
            iq["type"] = cmd.get("type", "set")
            iq["to"] = cmd["to"]
            iq.append(ET.fromstring(cmd["xml"]))
            try:
                await iq.send(timeout=IQ_TIMEOUT)
                done["result"] = "result"
            except IqError as exc:
                done["result"] = "error"
                done["condition"] = exc.condition
        elif name == "http_get":
            body = await asyncio.to_thread(self.http_get, cmd["url"])
            done["size"] = len(body)
            done["sha256"] = hashlib.sha256(body).hexdigest()
        elif isinstance(name, str) and name in self.commands:
            await self.commands[name](cmd, done)
        else:
            raise ValueError(f"unknown command {name!r}")
        emit("done", **done)

    def http_get(self, url: str) -> bytes:
        """What a client does with a shared link: GET it over TLS it verifies."""
        if not url.startswith("https://"):
            raise ValueError(f"not an https link: {url}")
        context = ssl.create_default_context(cafile=str(self.ca_certs))
        with urllib.request.urlopen(url, context=context, timeout=30) as resp:
            return bytes(resp.read())

    # ----- commands: group chat ---------------------------------------------

    def joined_room(self, room_jid: str) -> Room:
        room = self.muc_rooms.get(JID(room_jid).bare)
        if room is None or not room.joined:
            raise ValueError(f"not in room {room_jid}")
        return room

    async def muc_join(self, cmd: Json, done: Json) -> None:
        room_jid = JID(cmd["room"]).bare
        nick = cmd["nick"]
        history = cmd.get("history")
        room = self.muc_rooms.get(room_jid)
        rejoin = room is not None and room.joined  # no new history or subject
        if room is None:
            room = self.muc_rooms[room_jid] = Room(room_jid, nick)
        else:
            room.self_presence = new_future()
            room.history = 0
        join = self.plugin["xep_0045"].make_join_stanza(
            JID(room_jid),
            nick,
            password=cmd.get("password"),
            maxstanzas=int(history) if history is not None else None,
        )
        join.send()
        done.update(room=room_jid, nick=nick)
        if not cmd.get("wait", True):
            return
        pres = await wait_muc(room.self_presence, f"self-presence from {room_jid}")
        ptype = pres.xml.get("type")
        x = pres.xml.find(qname(MUC_USER_NS, "x"))
        if ptype == "error":
            raise PresenceError(pres)
        if ptype == "unavailable":
            raise RuntimeError(f"removed from {room_jid} while joining (codes {status_codes(x)})")
        item = x.find(qname(MUC_USER_NS, "item")) if x is not None else None
        subject = None
        if not rejoin:
            subject = await wait_muc(room.subject, f"subject from {room_jid}")
        done.update(
            nick=pres["from"].resource,
            role=attr(item, "role"),
            affiliation=attr(item, "affiliation"),
            codes=status_codes(x),
            occupant_id=occupant_id(pres.xml),
            subject=subject,
            history=room.history,
        )

    async def muc_leave(self, cmd: Json, done: Json) -> None:
        room = self.joined_room(cmd["room"])
        room.left = new_future()
        self.send_presence(pto=JID(f"{room.jid}/{room.nick}"), ptype="unavailable")
        pres = await wait_muc(room.left, f"unavailable self-presence from {room.jid}")
        done.update(room=room.jid, codes=status_codes(pres.xml.find(qname(MUC_USER_NS, "x"))))

    async def muc_send(self, cmd: Json, done: Json) -> None:
        msg = self.new_message(JID(cmd["room"]).bare, "groupchat", cmd.get("id"))
        msg["body"] = cmd["body"]
        msg.send()
        done["id"] = msg["id"]

    async def muc_correct(self, cmd: Json, done: Json) -> None:
        msg = self.new_message(JID(cmd["room"]).bare, "groupchat", cmd.get("id"))
        msg["body"] = cmd["body"]
        msg["replace"]["id"] = cmd["replace"]
        msg.send()
        done["id"] = msg["id"]

    async def muc_pm(self, cmd: Json, done: Json) -> None:
        msg = self.new_message(f"{JID(cmd['room']).bare}/{cmd['nick']}", "chat", cmd.get("id"))
        msg["body"] = cmd["body"]
        ET.SubElement(msg.xml, qname(MUC_USER_NS, "x"))
        msg.send()
        done["id"] = msg["id"]

    async def muc_subject(self, cmd: Json, _done: Json) -> None:
        self.plugin["xep_0045"].set_subject(JID(cmd["room"]), cmd["subject"])

    async def muc_role(self, cmd: Json, _done: Json) -> None:
        await self.plugin["xep_0045"].set_role(
            JID(cmd["room"]),
            cmd["nick"],
            cmd["role"],
            reason=cmd.get("reason", ""),
            timeout=IQ_TIMEOUT,
        )

    async def muc_affiliation(self, cmd: Json, _done: Json) -> None:
        await self.plugin["xep_0045"].set_affiliation(
            JID(cmd["room"]),
            cmd["affiliation"],
            jid=JID(cmd["jid"]),
            reason=cmd.get("reason", ""),
            timeout=IQ_TIMEOUT,
        )

    async def muc_invite(self, cmd: Json, _done: Json) -> None:
        self.plugin["xep_0045"].invite(JID(cmd["room"]), JID(cmd["to"]), cmd.get("reason", ""))

    async def muc_direct_invite(self, cmd: Json, _done: Json) -> None:
        self.plugin["xep_0249"].send_invitation(
            JID(cmd["to"]),
            JID(cmd["room"]),
            password=cmd.get("password"),
            reason=cmd.get("reason"),
        )

    async def muc_decline(self, cmd: Json, _done: Json) -> None:
        self.plugin["xep_0045"].decline(JID(cmd["room"]), JID(cmd["to"]), cmd.get("reason", ""))

    async def muc_retract(self, cmd: Json, done: Json) -> None:
        # Built by hand: slixmpp's xep_0424 omits the fallback's for=.
        msg = self.new_message(JID(cmd["room"]).bare, "groupchat")
        msg["body"] = RETRACT_FALLBACK
        ET.SubElement(msg.xml, qname(RETRACT_NS, "retract"), {"id": cmd["id"]})
        ET.SubElement(msg.xml, qname(FALLBACK_NS, "fallback"), {"for": RETRACT_NS})
        ET.SubElement(msg.xml, qname(HINTS_NS, "store"))
        msg.send()
        done.update(retract=cmd["id"], id=msg["id"])

    async def muc_moderate(self, cmd: Json, _done: Json) -> None:
        # Built by hand: slixmpp's xep_0425 speaks message-moderate:1, the
        # 2023 mod_muc_moderation only the :0 fastening form.
        iq = self.make_iq_set(ito=JID(cmd["room"]).bare)
        apply_to = ET.SubElement(iq.xml, qname(FASTEN_NS, "apply-to"), {"id": cmd["stanza_id"]})
        moderate = ET.SubElement(apply_to, qname(MODERATE_V0_NS, "moderate"))
        ET.SubElement(moderate, qname(RETRACT_V0_NS, "retract"))
        if cmd.get("reason"):
            ET.SubElement(moderate, qname(MODERATE_V0_NS, "reason")).text = cmd["reason"]
        await iq.send(timeout=IQ_TIMEOUT)

    async def muc_configure(self, cmd: Json, done: Json) -> None:
        muc = self.plugin["xep_0045"]
        room = JID(cmd["room"])
        form = await muc.get_room_config(room, timeout=IQ_TIMEOUT)
        fields = form.get_fields()
        for var, value in cmd["fields"].items():
            if var not in fields:
                raise ValueError(f"the configuration form of {room} has no field {var!r}")
            fields[var]["value"] = value
        done["fields"] = {var: fields[var]["value"] for var in cmd["fields"]}
        await muc.set_room_config(room, form, timeout=IQ_TIMEOUT)

    async def muc_destroy(self, cmd: Json, _done: Json) -> None:
        await self.plugin["xep_0045"].destroy(
            JID(cmd["room"]), reason=cmd.get("reason", ""), timeout=IQ_TIMEOUT
        )

    async def muc_occupants(self, cmd: Json, done: Json) -> None:
        room = self.joined_room(cmd["room"])
        done.update(
            room=room.jid,
            nick=room.nick,
            occupants=[asdict(o) for _, o in sorted(room.occupants.items())],
        )

    async def muc_ping(self, cmd: Json, done: Json) -> None:
        # Not xep_0410.send_self_ping: it folds the error condition into an enum.
        room_jid = JID(cmd["room"]).bare
        nick = self.muc_nicks.get(room_jid)
        if nick is None:
            raise ValueError(f"never joined {room_jid}")
        condition: str | None = None
        try:
            await self.plugin["xep_0199"].send_ping(JID(f"{room_jid}/{nick}"), timeout=IQ_TIMEOUT)
        except IqError as exc:
            condition = exc.condition
        joined = condition is None or condition in SELF_PING_JOINED
        done.update(room=room_jid, result="joined" if joined else condition, condition=condition)

    async def muc_mam(self, cmd: Json, done: Json) -> None:
        room_jid = JID(cmd["room"]).bare
        count = 0
        async for res in self.plugin["xep_0313"].iterate(
            jid=JID(room_jid), rsm={"max": int(cmd.get("max", 50))}
        ):
            fwd = res["mam_result"]["forwarded"]
            inner = fwd["stanza"]
            xml = inner.xml
            stamp = fwd["delay"]["stamp"]
            emit(
                "muc_mam_message",
                **{
                    "room": room_jid,
                    "archive_id": res["mam_result"]["id"],
                    "from": str(inner["from"]),
                    "nick": inner["from"].resource or None,
                    "id": text_or_none(inner["id"]),
                    "origin_id": attr(xml.find(qname(SID_NS, "origin-id")), "id"),
                    "occupant_id": occupant_id(xml),
                    "body": inner["body"] or None,
                    "replace": attr(xml.find(qname(CORRECT_NS, "replace")), "id"),
                    "retract": retraction_target(xml),
                    "moderated": moderation(xml),
                    "stamp": stamp.isoformat() if stamp else None,
                },
            )
            count += 1
        done.update(room=room_jid, count=count)

    # ----- commands: bookmarks (XEP-0402) -----------------------------------

    async def bookmarks_publish(self, cmd: Json, done: Json) -> None:
        room_jid = JID(cmd["room"]).bare
        conference = Conference()
        conference["autojoin"] = bool(cmd["autojoin"])
        if cmd.get("name"):
            conference["name"] = cmd["name"]
        if cmd.get("nick"):
            conference["nick"] = cmd["nick"]
        options = self.plugin["xep_0004"].make_form(ftype="submit")
        options.add_field(var="FORM_TYPE", ftype="hidden", value=PUBLISH_OPTIONS_NS)
        for var, value in BOOKMARK_PUBLISH_OPTIONS.items():
            options.add_field(var=var, value=value)
        await self.plugin["xep_0060"].publish(
            self.boundjid.bare,
            BOOKMARKS_NS,
            id=room_jid,
            payload=conference,
            options=options,
            timeout=IQ_TIMEOUT,
        )
        done["room"] = room_jid

    async def bookmarks_retract(self, cmd: Json, done: Json) -> None:
        room_jid = JID(cmd["room"]).bare
        await self.plugin["xep_0060"].retract(
            self.boundjid.bare, BOOKMARKS_NS, room_jid, notify=True, timeout=IQ_TIMEOUT
        )
        done["room"] = room_jid

    async def bookmarks_get(self, _cmd: Json, done: Json) -> None:
        try:
            result = await self.plugin["xep_0060"].get_items(
                self.boundjid.bare, BOOKMARKS_NS, timeout=IQ_TIMEOUT
            )
        except IqError as exc:
            if exc.condition != "item-not-found":
                raise
            done["bookmarks"] = []
            return
        items = result["pubsub"]["items"].xml.findall(qname(PUBSUB_NS, "item"))
        done["bookmarks"] = [
            bookmark(item.get("id"), item.find(qname(BOOKMARKS_NS, "conference"))) for item in items
        ]


async def read_commands(peer: Peer) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return  # EOF: quit
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("command must be a JSON object")
        except ValueError as exc:
            emit("error", message=f"bad command line: {exc}")
            continue
        if cmd.get("cmd") == "quit":
            return
        # Commands run in order; a slow one (mam) blocks the next ones,
        # which keeps the event stream easy to reason about.
        await peer.online.wait()
        try:
            await peer.run_command(cmd)
        except Exception as exc:
            err: dict[str, Any] = {"cmd": cmd.get("cmd"), "message": f"{type(exc).__name__}: {exc}"}
            if isinstance(exc, XMPPError):
                err["condition"] = exc.condition
                err["text"] = exc.text or None
            if "tag" in cmd:
                err["tag"] = cmd["tag"]
            emit("error", **err)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jid", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--direct-tls", action="store_true")
    parser.add_argument("--resource")
    parser.add_argument("--auto-approve", action="store_true")
    args = parser.parse_args()

    password = os.environ.get("PEER_PASSWORD")
    if password is None:
        emit("error", message="PEER_PASSWORD is not set")
        return 2
    ca_file = Path(args.ca_file)
    if not ca_file.is_file():
        emit("error", message=f"CA file not found: {ca_file}")
        return 2

    jid = JID(args.jid)
    if args.resource:
        jid.resource = args.resource
    peer = Peer(str(jid), password, args.auto_approve)
    peer.ca_certs = ca_file
    peer.enable_plaintext = False
    peer.enable_direct_tls = args.direct_tls
    peer.enable_starttls = not args.direct_tls

    peer.connect(args.host, args.port)
    commands = asyncio.ensure_future(read_commands(peer))
    gone = asyncio.ensure_future(peer.gone.wait())
    await asyncio.wait({commands, gone}, return_when=asyncio.FIRST_COMPLETED)

    if commands.done():
        exc = commands.exception()
        if exc is not None:
            emit("error", message=f"command reader failed: {exc!r}")
        if not peer.gone.is_set():
            peer.quitting = True
            peer.disconnect(wait=2.0)
            try:
                await asyncio.wait_for(gone, timeout=5)
            except asyncio.TimeoutError:
                peer.abort()
    else:
        commands.cancel()
    gone.cancel()
    return peer.exit_code


if __name__ == "__main__":
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if os.environ.get("PEER_DEBUG") == "1" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(asyncio.run(main()))
