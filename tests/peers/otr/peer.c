/*
 * A libotr 4.1 peer for Starling's OTR interop tests (tests/otr.rs), driven over stdin/stdout.
 * Test tool only; never linked into Starling.
 *
 *   peer OUR_ACCOUNT THEIR_ACCOUNT [MESSAGE_SIZE]
 *
 * Generates a DSA key and an instance tag into a temporary directory (removed on exit), prints
 * `ready`, then reads one command per line. Text and wire messages travel as base64 (B64).
 *
 *   send B64_TEXT         encrypt (or not) and send
 *   recv B64_WIRE         handle a message from THEIR_ACCOUNT
 *   start                 send an OTR query message
 *   end                   end the private conversation
 *   smp B64_Q|- B64_S     start SMP with question Q (- for none) and secret S
 *   smp_answer B64_S      answer the pending SMP question with secret S
 *   fingerprint           our fingerprint
 *   peer_fingerprint      the active session's fingerprint of THEIR_ACCOUNT
 *   status                the best session's state
 *   quit
 *
 * Each command prints zero or more of these lines, then `ok` (or `err REASON`):
 *
 *   wire B64              put this on the wire to THEIR_ACCOUNT, in order
 *   plain enc|clear B64   text for the user; enc if it arrived as an OTR message
 *   status plaintext|encrypted|finished    the state changed (or was asked for)
 *   smp_question [B64_Q]  the other side started SMP; answer with smp_answer
 *   smp_result success|failure|abort|error
 *   event NAME            a libotr message event (e.g. RCVDMSG_UNREADABLE)
 *   fingerprint HUMAN     "XXXXXXXX XXXXXXXX XXXXXXXX XXXXXXXX XXXXXXXX", or "none"
 *
 * See PROTOCOL.md. Messages longer than MESSAGE_SIZE (default 140) are sent as fragments.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gcrypt.h>
/* libotr's headers need proto.h first */
#include <libotr/proto.h>
#include <libotr/b64.h>
#include <libotr/instag.h>
#include <libotr/message.h>
#include <libotr/privkey.h>
#include <libotr/userstate.h>

#define PROTO "xmpp"
#define POLICY (OTRL_POLICY_ALLOW_V3 | OTRL_POLICY_WHITESPACE_START_AKE | OTRL_POLICY_ERROR_START_AKE)

static OtrlUserState us;
static OtrlMessageAppOps ops;
static const char *account, *buddy;
static int message_size = 140;
static ConnContext *smp_context; /* where the pending SMP question came from */
static const char *last_status = "plaintext";
static char dir[] = "/tmp/starling-otr-peer-XXXXXX";
static char keyfile[64], instagfile[64];

static void put_b64(const char *tag, const char *mode, const unsigned char *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out) { perror("malloc"); exit(1); }
    out[otrl_base64_encode(out, data, len)] = '\0';
    printf("%s%s%s %s\n", tag, mode ? " " : "", mode ? mode : "", out);
    free(out);
}

/* Decodes base64 into a new NUL-terminated string (NULL on bad input). */
static char *from_b64(const char *in)
{
    size_t len = strlen(in);
    unsigned char *out = malloc(OTRL_B64_MAX_DECODED_SIZE(len) + 1);
    if (!out) { perror("malloc"); exit(1); }
    out[otrl_base64_decode(out, in, len)] = '\0';
    return (char *)out;
}

static ConnContext *best_context(void)
{
    return otrl_context_find(us, buddy, account, PROTO, OTRL_INSTAG_BEST, 0, NULL, NULL, NULL);
}

static const char *status_name(void)
{
    ConnContext *c = best_context();
    if (!c) return "plaintext";
    switch (c->msgstate) {
    case OTRL_MSGSTATE_ENCRYPTED: return "encrypted";
    case OTRL_MSGSTATE_FINISHED: return "finished";
    default: return "plaintext";
    }
}

static void report_status_change(void)
{
    const char *now = status_name();
    if (strcmp(now, last_status) != 0) {
        printf("status %s\n", now);
        last_status = now;
    }
}

/* ---- OtrlMessageAppOps ---- */

static OtrlPolicy op_policy(void *opdata, ConnContext *c) { (void)opdata; (void)c; return POLICY; }

static void op_create_privkey(void *opdata, const char *acc, const char *proto)
{
    (void)opdata;
    otrl_privkey_generate(us, keyfile, acc, proto);
}

static int op_is_logged_in(void *opdata, const char *acc, const char *proto, const char *rcpt)
{
    (void)opdata; (void)acc; (void)proto; (void)rcpt;
    return 1;
}

static void op_inject(void *opdata, const char *acc, const char *proto, const char *rcpt,
                      const char *message)
{
    (void)opdata; (void)acc; (void)proto; (void)rcpt;
    if (*message) put_b64("wire", NULL, (const unsigned char *)message, strlen(message));
}

static void op_noop(void *opdata) { (void)opdata; }

static void op_new_fingerprint(void *opdata, OtrlUserState u, const char *acc, const char *proto,
                               const char *user, unsigned char fp[20])
{
    (void)opdata; (void)u; (void)acc; (void)proto; (void)user; (void)fp;
}

static void op_context(void *opdata, ConnContext *c) { (void)opdata; (void)c; }

static void op_still_secure(void *opdata, ConnContext *c, int is_reply)
{
    (void)opdata; (void)c; (void)is_reply;
}

static int op_max_message_size(void *opdata, ConnContext *c) { (void)opdata; (void)c; return message_size; }

static const char *op_account_name(void *opdata, const char *acc, const char *proto)
{
    (void)opdata; (void)proto;
    return acc;
}

static void op_account_name_free(void *opdata, const char *name) { (void)opdata; (void)name; }

static const char *op_error_message(void *opdata, ConnContext *c, OtrlErrorCode code)
{
    (void)opdata; (void)c;
    switch (code) {
    case OTRL_ERRCODE_ENCRYPTION_ERROR: return "error encrypting message";
    case OTRL_ERRCODE_MSG_NOT_IN_PRIVATE: return "sent an encrypted message to somebody not in a private conversation";
    case OTRL_ERRCODE_MSG_UNREADABLE: return "sent an unreadable encrypted message";
    case OTRL_ERRCODE_MSG_MALFORMED: return "sent a malformed message";
    default: return "error";
    }
}

static void op_error_message_free(void *opdata, const char *msg) { (void)opdata; (void)msg; }

static void op_smp_event(void *opdata, OtrlSMPEvent event, ConnContext *c,
                         unsigned short progress, char *question)
{
    (void)opdata; (void)progress;
    switch (event) {
    case OTRL_SMPEVENT_ASK_FOR_SECRET:
        smp_context = c;
        printf("smp_question\n");
        break;
    case OTRL_SMPEVENT_ASK_FOR_ANSWER:
        smp_context = c;
        put_b64("smp_question", NULL, (const unsigned char *)question, strlen(question));
        break;
    case OTRL_SMPEVENT_SUCCESS: printf("smp_result success\n"); break;
    case OTRL_SMPEVENT_FAILURE: printf("smp_result failure\n"); break;
    case OTRL_SMPEVENT_ABORT: printf("smp_result abort\n"); break;
    case OTRL_SMPEVENT_CHEATED:
    case OTRL_SMPEVENT_ERROR:
        printf("smp_result error\n");
        otrl_message_abort_smp(us, &ops, opdata, c);
        break;
    default: break;
    }
}

static void op_msg_event(void *opdata, OtrlMessageEvent event, ConnContext *c,
                         const char *message, gcry_error_t err)
{
    static const char *names[] = {
        "NONE", "ENCRYPTION_REQUIRED", "ENCRYPTION_ERROR", "CONNECTION_ENDED", "SETUP_ERROR",
        "MSG_REFLECTED", "MSG_RESENT", "RCVDMSG_NOT_IN_PRIVATE", "RCVDMSG_UNREADABLE",
        "RCVDMSG_MALFORMED", "LOG_HEARTBEAT_RCVD", "LOG_HEARTBEAT_SENT", "RCVDMSG_GENERAL_ERR",
        "RCVDMSG_UNENCRYPTED", "RCVDMSG_UNRECOGNIZED", "RCVDMSG_FOR_OTHER_INSTANCE",
    };
    (void)opdata; (void)c; (void)message; (void)err;
    if ((size_t)event < sizeof names / sizeof names[0]) printf("event %s\n", names[event]);
    else printf("event %d\n", (int)event);
}

static void op_create_instag(void *opdata, const char *acc, const char *proto)
{
    (void)opdata;
    otrl_instag_generate(us, instagfile, acc, proto);
}

static void init_ops(void)
{
    ops.policy = op_policy;
    ops.create_privkey = op_create_privkey;
    ops.is_logged_in = op_is_logged_in;
    ops.inject_message = op_inject;
    ops.update_context_list = op_noop;
    ops.new_fingerprint = op_new_fingerprint;
    ops.write_fingerprints = op_noop;
    ops.gone_secure = op_context;
    ops.gone_insecure = op_context;
    ops.still_secure = op_still_secure;
    ops.max_message_size = op_max_message_size;
    ops.account_name = op_account_name;
    ops.account_name_free = op_account_name_free;
    ops.otr_error_message = op_error_message;
    ops.otr_error_message_free = op_error_message_free;
    ops.handle_smp_event = op_smp_event;
    ops.handle_msg_event = op_msg_event;
    ops.create_instag = op_create_instag;
}

/* ---- commands ---- */

static const char *cmd_send(const char *arg)
{
    char *text = from_b64(arg), *out = NULL;
    gcry_error_t err = otrl_message_sending(us, &ops, NULL, account, PROTO, buddy,
        OTRL_INSTAG_BEST, text, NULL, &out, OTRL_FRAGMENT_SEND_ALL, NULL, NULL, NULL);
    /* With SEND_ALL everything to send was injected; NULL means "send the original". */
    if (!err && !out) put_b64("wire", NULL, (const unsigned char *)text, strlen(text));
    otrl_message_free(out);
    free(text);
    return err ? "sending failed" : NULL;
}

static const char *cmd_recv(const char *arg)
{
    char *wire = from_b64(arg), *text = NULL;
    OtrlTLV *tlvs = NULL;
    int ignore = otrl_message_receiving(us, &ops, NULL, account, PROTO, buddy, wire, &text,
                                        &tlvs, NULL, NULL, NULL);
    if (!ignore) {
        const char *shown = text ? text : wire;
        put_b64("plain", strncmp(wire, "?OTR", 4) == 0 ? "enc" : "clear",
                (const unsigned char *)shown, strlen(shown));
    }
    otrl_tlv_free(tlvs);
    otrl_message_free(text);
    free(wire);
    return NULL;
}

static const char *cmd_smp(char *arg)
{
    char *space = strchr(arg, ' ');
    ConnContext *c = best_context();
    if (!space) return "usage: smp B64_QUESTION|- B64_SECRET";
    if (!c || c->msgstate != OTRL_MSGSTATE_ENCRYPTED) return "not encrypted";
    *space = '\0';
    char *secret = from_b64(space + 1);
    if (strcmp(arg, "-") == 0) {
        otrl_message_initiate_smp(us, &ops, NULL, c, (unsigned char *)secret, strlen(secret));
    } else {
        char *question = from_b64(arg);
        otrl_message_initiate_smp_q(us, &ops, NULL, c, question, (unsigned char *)secret,
                                    strlen(secret));
        free(question);
    }
    free(secret);
    return NULL;
}

static const char *cmd_smp_answer(const char *arg)
{
    if (!smp_context) return "no SMP question";
    char *secret = from_b64(arg);
    otrl_message_respond_smp(us, &ops, NULL, smp_context, (unsigned char *)secret, strlen(secret));
    smp_context = NULL;
    free(secret);
    return NULL;
}

static void print_fingerprint(const unsigned char *fp)
{
    char human[OTRL_PRIVKEY_FPRINT_HUMAN_LEN];
    if (!fp) { printf("fingerprint none\n"); return; }
    otrl_privkey_hash_to_human(human, fp);
    printf("fingerprint %s\n", human);
}

static const char *handle(char *line)
{
    char *arg = strchr(line, ' ');
    if (arg) *arg++ = '\0';
    else arg = line + strlen(line);

    if (strcmp(line, "send") == 0) return cmd_send(arg);
    if (strcmp(line, "recv") == 0) return cmd_recv(arg);
    if (strcmp(line, "smp") == 0) return cmd_smp(arg);
    if (strcmp(line, "smp_answer") == 0) return cmd_smp_answer(arg);
    if (strcmp(line, "start") == 0) {
        char *query = otrl_proto_default_query_msg(account, POLICY);
        put_b64("wire", NULL, (const unsigned char *)query, strlen(query));
        free(query);
        return NULL;
    }
    if (strcmp(line, "end") == 0) {
        otrl_message_disconnect_all_instances(us, &ops, NULL, account, PROTO, buddy);
        return NULL;
    }
    if (strcmp(line, "fingerprint") == 0) {
        unsigned char fp[20];
        print_fingerprint(otrl_privkey_fingerprint_raw(us, fp, account, PROTO));
        return NULL;
    }
    if (strcmp(line, "peer_fingerprint") == 0) {
        ConnContext *c = best_context();
        int up = c && c->msgstate == OTRL_MSGSTATE_ENCRYPTED && c->active_fingerprint;
        print_fingerprint(up ? c->active_fingerprint->fingerprint : NULL);
        return NULL;
    }
    if (strcmp(line, "status") == 0) {
        last_status = status_name();
        printf("status %s\n", last_status);
        return NULL;
    }
    return "unknown command";
}

static void cleanup(void)
{
    unlink(keyfile);
    unlink(instagfile);
    rmdir(dir);
}

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (argc < 3) {
        fprintf(stderr, "usage: %s OUR_ACCOUNT THEIR_ACCOUNT [MESSAGE_SIZE]\n", argv[0]);
        return 2;
    }
    account = argv[1];
    buddy = argv[2];
    if (argc > 3) message_size = atoi(argv[3]);
    setvbuf(stdout, NULL, _IOLBF, 0);

    OTRL_INIT;
    us = otrl_userstate_create();
    init_ops();
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    atexit(cleanup);
    snprintf(keyfile, sizeof keyfile, "%s/key", dir);
    snprintf(instagfile, sizeof instagfile, "%s/instag", dir);
    if (otrl_privkey_generate(us, keyfile, account, PROTO) ||
        otrl_instag_generate(us, instagfile, account, PROTO)) {
        fprintf(stderr, "key or instance tag generation failed\n");
        return 1;
    }
    printf("ready\n");

    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (strcmp(line, "quit") == 0) { printf("ok\n"); break; }
        const char *err = handle(line);
        report_status_change();
        if (err) printf("err %s\n", err);
        else printf("ok\n");
    }
    free(line);
    otrl_userstate_free(us);
    return 0;
}
