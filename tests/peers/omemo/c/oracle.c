/*
 * OMEMO oracle on top of libomemo-c (Dino's fork of libsignal-protocol-c).
 *
 * TEST-ONLY TOOL. This program is built by Starling's interop tests into a
 * temporary/target directory and run as a separate child process; it talks to
 * the Rust tests over stdin/stdout with the line protocol described in
 * ../PROTOCOL.md (that file is the contract). libomemo-c is GPL-3.0 and is
 * linked only into this stand-alone binary -- never into Starling itself, and
 * nothing here is shipped.
 *
 * One process is one OMEMO device of one namespace:
 *   oldmemo  eu.siacs.conversations.axolotl  -> libomemo-c session version 3
 *   twomemo  urn:xmpp:omemo:2                -> libomemo-c session version 4
 *
 * How libomemo-c picks the format: session_builder_set_version() /
 * session_cipher_set_version() set the version that a *fresh* session record
 * gets (the default, 2, is bumped to 3 by the ratchet initialisation). A
 * version-4 session state uses the "OMEMO X3DH" / "OMEMO Root Chain" /
 * "OMEMO Message Key Material" KDF infos, a 16-byte MAC over
 * Ed25519(ik_alice) || Ed25519(ik_bob) || OMEMOMessage, and serialises
 * messages as OMEMOAuthenticatedMessage / OMEMOKeyExchange protobufs. Existing
 * sessions keep the version stored in their record. Incoming version-4
 * messages must be parsed with the *_deserialize_omemo() functions.
 *
 * Implemented requests: setup, encrypt, decrypt, quit. seal/open are answered
 * with "err" (libomemo-c only implements the ratchet layer, not the payload
 * encryption of either namespace).
 *
 * Everything lives in memory: the crypto provider is OpenSSL 3 (RAND, EVP_MAC
 * HMAC-SHA-256, EVP SHA-512, AES-CBC/PKCS#7 and AES-CTR), and the stores are
 * plain linked lists. The identity store trusts every identity key (the
 * oracle is a reference implementation of the cryptography, not of trust
 * management). The local registration id is the device id, as in Dino and
 * Conversations.
 *
 * Wire facts worth knowing when comparing against this oracle:
 *  - Signatures are always XEdDSA (xed25519_sign) with the X25519 identity
 *    key, i.e. valid Ed25519 signatures under the Ed25519 form of that key
 *    with sign bit 0; bit 7 of byte 63 stays 0. The twomemo `ik` is that
 *    Ed25519 form (sign bit always 0 here; peers' keys may have it set).
 *  - pn in a message is the index of the last message of the previous
 *    sending chain (count - 1), as in libsignal, not the count of the Double
 *    Ratchet spec. libomemo-c itself ignores pn when receiving (it keeps old
 *    receiving chains instead).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <signal_protocol.h>
#include <curve.h>
#include <key_helper.h>
#include <protocol.h>
#include <session_builder.h>
#include <session_cipher.h>
#include <session_pre_key.h>

/* The remote account name; sessions are told apart by device id alone. */
static const char PEER_NAME[] = "peer@starling.test";
#define SIGNED_PRE_KEY_ID 1

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

/* A growable string for building one response line. */
typedef struct {
    char *data;
    size_t len, cap;
} strbuf;

static void sb_append(strbuf *sb, const char *s, size_t n)
{
    if (sb->len + n + 1 > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 256;
        while (sb->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(sb->data, cap);
        if (!p) {
            perror("oracle: realloc");
            exit(2);
        }
        sb->data = p;
        sb->cap = cap;
    }
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = 0;
}

static void sb_printf(strbuf *sb, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_append(sb, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        exit(2);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_append(sb, big, (size_t)n);
    free(big);
}

static void sb_b64(strbuf *sb, const uint8_t *data, size_t len)
{
    size_t out_len = 4 * ((len + 2) / 3);
    unsigned char *out = malloc(out_len + 1);
    if (!out)
        exit(2);
    int n = EVP_EncodeBlock(out, data, (int)len);
    sb_append(sb, (const char *)out, (size_t)n);
    free(out);
}

static void sb_b64_buf(strbuf *sb, signal_buffer *buf)
{
    sb_b64(sb, signal_buffer_data(buf), signal_buffer_len(buf));
}

/* Strict standard base64 with padding (RFC 4648 section 4). Returns a
 * malloc'd buffer (possibly of length 0) or NULL if the input is invalid. */
static uint8_t *b64_decode(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    if (n % 4 != 0)
        return NULL;
    size_t pad = 0;
    if (n >= 1 && s[n - 1] == '=')
        pad++;
    if (n >= 2 && s[n - 2] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return NULL;
    }
    uint8_t *out = malloc(n / 4 * 3 + 1);
    if (!out)
        exit(2);
    if (n == 0) {
        *out_len = 0;
        return out;
    }
    int m = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (m < 0) {
        free(out);
        return NULL;
    }
    *out_len = (size_t)m - pad;
    return out;
}

/* Decimal integer in [0, max]. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    if (!*s)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

static const char *sg_strerror(int code)
{
    switch (code) {
    case SG_ERR_NOMEM: return "SG_ERR_NOMEM";
    case SG_ERR_INVAL: return "SG_ERR_INVAL";
    case SG_ERR_UNKNOWN: return "SG_ERR_UNKNOWN";
    case SG_ERR_DUPLICATE_MESSAGE: return "SG_ERR_DUPLICATE_MESSAGE";
    case SG_ERR_INVALID_KEY: return "SG_ERR_INVALID_KEY";
    case SG_ERR_INVALID_KEY_ID: return "SG_ERR_INVALID_KEY_ID";
    case SG_ERR_INVALID_MAC: return "SG_ERR_INVALID_MAC";
    case SG_ERR_INVALID_MESSAGE: return "SG_ERR_INVALID_MESSAGE";
    case SG_ERR_INVALID_VERSION: return "SG_ERR_INVALID_VERSION";
    case SG_ERR_LEGACY_MESSAGE: return "SG_ERR_LEGACY_MESSAGE";
    case SG_ERR_NO_SESSION: return "SG_ERR_NO_SESSION";
    case SG_ERR_STALE_KEY_EXCHANGE: return "SG_ERR_STALE_KEY_EXCHANGE";
    case SG_ERR_UNTRUSTED_IDENTITY: return "SG_ERR_UNTRUSTED_IDENTITY";
    case SG_ERR_VRF_SIG_VERIF_FAILED: return "SG_ERR_VRF_SIG_VERIF_FAILED";
    case SG_ERR_INVALID_PROTO_BUF: return "SG_ERR_INVALID_PROTO_BUF";
    default: return "libomemo-c error";
    }
}

/* ------------------------------------------------------------------------ */
/* Crypto provider (OpenSSL 3)                                              */
/* ------------------------------------------------------------------------ */

static int cp_random(uint8_t *data, size_t len, void *user_data)
{
    (void)user_data;
    return RAND_bytes(data, (int)len) == 1 ? 0 : SG_ERR_UNKNOWN;
}

static int cp_hmac_init(void **hmac_context, const uint8_t *key, size_t key_len, void *user_data)
{
    (void)user_data;
    static char digest[] = "SHA256";
    static const uint8_t empty = 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!mac)
        return SG_ERR_UNKNOWN;
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (!ctx)
        return SG_ERR_NOMEM;
    if (!EVP_MAC_init(ctx, key ? key : &empty, key_len, params)) {
        EVP_MAC_CTX_free(ctx);
        return SG_ERR_UNKNOWN;
    }
    *hmac_context = ctx;
    return 0;
}

static int cp_hmac_update(void *hmac_context, const uint8_t *data, size_t data_len, void *user_data)
{
    (void)user_data;
    return EVP_MAC_update(hmac_context, data, data_len) ? 0 : SG_ERR_UNKNOWN;
}

static int cp_hmac_final(void *hmac_context, signal_buffer **output, void *user_data)
{
    (void)user_data;
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t md_len = 0;
    if (!EVP_MAC_final(hmac_context, md, &md_len, sizeof md))
        return SG_ERR_UNKNOWN;
    *output = signal_buffer_create(md, md_len);
    return *output ? 0 : SG_ERR_NOMEM;
}

static void cp_hmac_cleanup(void *hmac_context, void *user_data)
{
    (void)user_data;
    EVP_MAC_CTX_free(hmac_context);
}

static int cp_sha512_init(void **digest_context, void *user_data)
{
    (void)user_data;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return SG_ERR_NOMEM;
    if (!EVP_DigestInit_ex(ctx, EVP_sha512(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return SG_ERR_UNKNOWN;
    }
    *digest_context = ctx;
    return 0;
}

static int cp_sha512_update(void *digest_context, const uint8_t *data, size_t data_len, void *user_data)
{
    (void)user_data;
    return EVP_DigestUpdate(digest_context, data, data_len) ? 0 : SG_ERR_UNKNOWN;
}

static int cp_sha512_final(void *digest_context, signal_buffer **output, void *user_data)
{
    (void)user_data;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_DigestFinal_ex(digest_context, md, &md_len))
        return SG_ERR_UNKNOWN;
    /* "prepare the context for reuse" */
    if (!EVP_DigestInit_ex(digest_context, EVP_sha512(), NULL))
        return SG_ERR_UNKNOWN;
    *output = signal_buffer_create(md, md_len);
    return *output ? 0 : SG_ERR_NOMEM;
}

static void cp_sha512_cleanup(void *digest_context, void *user_data)
{
    (void)user_data;
    EVP_MD_CTX_free(digest_context);
}

static const EVP_CIPHER *aes_cipher(int cipher, size_t key_len)
{
    if (cipher == SG_CIPHER_AES_CBC_PKCS5) {
        switch (key_len) {
        case 16: return EVP_aes_128_cbc();
        case 24: return EVP_aes_192_cbc();
        case 32: return EVP_aes_256_cbc();
        }
    } else if (cipher == SG_CIPHER_AES_CTR_NOPADDING) {
        switch (key_len) {
        case 16: return EVP_aes_128_ctr();
        case 24: return EVP_aes_192_ctr();
        case 32: return EVP_aes_256_ctr();
        }
    }
    return NULL;
}

static int aes_crypt(int encrypt, signal_buffer **output, int cipher,
                     const uint8_t *key, size_t key_len, const uint8_t *iv, size_t iv_len,
                     const uint8_t *in, size_t in_len)
{
    const EVP_CIPHER *evp = aes_cipher(cipher, key_len);
    if (!evp) {
        fprintf(stderr, "oracle: unsupported cipher %d with %zu-byte key\n", cipher, key_len);
        return SG_ERR_UNKNOWN;
    }
    if (iv_len != 16)
        return SG_ERR_UNKNOWN;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return SG_ERR_NOMEM;
    int result = SG_ERR_UNKNOWN;
    uint8_t *out = malloc(in_len + 32);
    int n1 = 0, n2 = 0;
    if (!out) {
        result = SG_ERR_NOMEM;
        goto done;
    }
    if (!EVP_CipherInit_ex(ctx, evp, NULL, key, iv, encrypt))
        goto done;
    EVP_CIPHER_CTX_set_padding(ctx, cipher == SG_CIPHER_AES_CBC_PKCS5 ? 1 : 0);
    if (!EVP_CipherUpdate(ctx, out, &n1, in, (int)in_len))
        goto done;
    if (!EVP_CipherFinal_ex(ctx, out + n1, &n2))
        goto done;
    *output = signal_buffer_create(out, (size_t)(n1 + n2));
    result = *output ? 0 : SG_ERR_NOMEM;
done:
    free(out);
    EVP_CIPHER_CTX_free(ctx);
    return result;
}

static int cp_encrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                      const uint8_t *iv, size_t iv_len, const uint8_t *plaintext,
                      size_t plaintext_len, void *user_data)
{
    (void)user_data;
    return aes_crypt(1, output, cipher, key, key_len, iv, iv_len, plaintext, plaintext_len);
}

static int cp_decrypt(signal_buffer **output, int cipher, const uint8_t *key, size_t key_len,
                      const uint8_t *iv, size_t iv_len, const uint8_t *ciphertext,
                      size_t ciphertext_len, void *user_data)
{
    (void)user_data;
    return aes_crypt(0, output, cipher, key, key_len, iv, iv_len, ciphertext, ciphertext_len);
}

/* ------------------------------------------------------------------------ */
/* In-memory key/value list used by all stores                              */
/* ------------------------------------------------------------------------ */

typedef struct kv_entry {
    struct kv_entry *next;
    char *name; /* NULL for id-only keys (pre-keys) */
    size_t name_len;
    int64_t id;
    uint8_t *data;
    size_t len;
} kv_entry;

typedef struct {
    kv_entry *head;
} kv_list;

static kv_entry **kv_find(kv_list *l, const char *name, size_t name_len, int64_t id)
{
    for (kv_entry **pp = &l->head; *pp; pp = &(*pp)->next) {
        kv_entry *e = *pp;
        if (e->id != id || e->name_len != name_len)
            continue;
        if (name_len && memcmp(e->name, name, name_len) != 0)
            continue;
        return pp;
    }
    return NULL;
}

static void kv_free_entry(kv_entry *e)
{
    free(e->name);
    free(e->data);
    free(e);
}

static int kv_put(kv_list *l, const char *name, size_t name_len, int64_t id, const uint8_t *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return SG_ERR_NOMEM;
    if (len)
        memcpy(copy, data, len);
    kv_entry **pp = kv_find(l, name, name_len, id);
    if (pp) {
        free((*pp)->data);
        (*pp)->data = copy;
        (*pp)->len = len;
        return 0;
    }
    kv_entry *e = calloc(1, sizeof *e);
    if (!e) {
        free(copy);
        return SG_ERR_NOMEM;
    }
    if (name_len) {
        e->name = malloc(name_len);
        if (!e->name) {
            free(copy);
            free(e);
            return SG_ERR_NOMEM;
        }
        memcpy(e->name, name, name_len);
    }
    e->name_len = name_len;
    e->id = id;
    e->data = copy;
    e->len = len;
    e->next = l->head;
    l->head = e;
    return 0;
}

static int kv_remove(kv_list *l, const char *name, size_t name_len, int64_t id)
{
    kv_entry **pp = kv_find(l, name, name_len, id);
    if (!pp)
        return 0;
    kv_entry *e = *pp;
    *pp = e->next;
    kv_free_entry(e);
    return 1;
}

static void kv_clear(kv_list *l)
{
    while (l->head) {
        kv_entry *e = l->head;
        l->head = e->next;
        kv_free_entry(e);
    }
}

/* ------------------------------------------------------------------------ */
/* Stores                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct {
    kv_list sessions;       /* (name, device id) -> session record */
    kv_list pre_keys;       /* id -> pre-key record */
    kv_list signed_pre_keys;/* id -> signed pre-key record */
    kv_list identities;     /* (name, device id) -> remote identity key */
    signal_buffer *identity_public;  /* ec_public_key_serialize() form */
    signal_buffer *identity_private;
    uint32_t registration_id;
} oracle_stores;

/* session store */
static int ss_load(signal_buffer **record, signal_buffer **user_record,
                   const signal_protocol_address *address, void *user_data)
{
    (void)user_record;
    oracle_stores *s = user_data;
    kv_entry **pp = kv_find(&s->sessions, address->name, address->name_len, address->device_id);
    if (!pp)
        return 0;
    *record = signal_buffer_create((*pp)->data, (*pp)->len);
    return *record ? 1 : SG_ERR_NOMEM;
}

static int ss_get_sub_device_sessions(signal_int_list **sessions, const char *name, size_t name_len, void *user_data)
{
    oracle_stores *s = user_data;
    signal_int_list *list = signal_int_list_alloc();
    if (!list)
        return SG_ERR_NOMEM;
    for (kv_entry *e = s->sessions.head; e; e = e->next)
        if (e->name_len == name_len && memcmp(e->name, name, name_len) == 0)
            signal_int_list_push_back(list, (int)e->id);
    *sessions = list;
    return (int)signal_int_list_size(list);
}

static int ss_store(const signal_protocol_address *address, uint8_t *record, size_t record_len,
                    uint8_t *user_record, size_t user_record_len, void *user_data)
{
    (void)user_record;
    (void)user_record_len;
    oracle_stores *s = user_data;
    return kv_put(&s->sessions, address->name, address->name_len, address->device_id, record, record_len);
}

static int ss_contains(const signal_protocol_address *address, void *user_data)
{
    oracle_stores *s = user_data;
    return kv_find(&s->sessions, address->name, address->name_len, address->device_id) ? 1 : 0;
}

static int ss_delete(const signal_protocol_address *address, void *user_data)
{
    oracle_stores *s = user_data;
    return kv_remove(&s->sessions, address->name, address->name_len, address->device_id);
}

static int ss_delete_all(const char *name, size_t name_len, void *user_data)
{
    oracle_stores *s = user_data;
    int n = 0;
    for (kv_entry **pp = &s->sessions.head; *pp;) {
        kv_entry *e = *pp;
        if (e->name_len == name_len && memcmp(e->name, name, name_len) == 0) {
            *pp = e->next;
            kv_free_entry(e);
            n++;
        } else {
            pp = &e->next;
        }
    }
    return n;
}

/* pre-key store and signed pre-key store (same shape) */
static int id_load(kv_list *l, signal_buffer **record, uint32_t id)
{
    kv_entry **pp = kv_find(l, NULL, 0, id);
    if (!pp)
        return SG_ERR_INVALID_KEY_ID;
    *record = signal_buffer_create((*pp)->data, (*pp)->len);
    return *record ? SG_SUCCESS : SG_ERR_NOMEM;
}

static int pks_load(signal_buffer **record, uint32_t id, void *user_data)
{
    return id_load(&((oracle_stores *)user_data)->pre_keys, record, id);
}

static int pks_store(uint32_t id, uint8_t *record, size_t record_len, void *user_data)
{
    return kv_put(&((oracle_stores *)user_data)->pre_keys, NULL, 0, id, record, record_len);
}

static int pks_contains(uint32_t id, void *user_data)
{
    return kv_find(&((oracle_stores *)user_data)->pre_keys, NULL, 0, id) ? 1 : 0;
}

static int pks_remove(uint32_t id, void *user_data)
{
    kv_remove(&((oracle_stores *)user_data)->pre_keys, NULL, 0, id);
    return 0;
}

static int spks_load(signal_buffer **record, uint32_t id, void *user_data)
{
    return id_load(&((oracle_stores *)user_data)->signed_pre_keys, record, id);
}

static int spks_store(uint32_t id, uint8_t *record, size_t record_len, void *user_data)
{
    return kv_put(&((oracle_stores *)user_data)->signed_pre_keys, NULL, 0, id, record, record_len);
}

static int spks_contains(uint32_t id, void *user_data)
{
    return kv_find(&((oracle_stores *)user_data)->signed_pre_keys, NULL, 0, id) ? 1 : 0;
}

static int spks_remove(uint32_t id, void *user_data)
{
    kv_remove(&((oracle_stores *)user_data)->signed_pre_keys, NULL, 0, id);
    return 0;
}

/* identity key store */
static int iks_get_key_pair(signal_buffer **public_data, signal_buffer **private_data, void *user_data)
{
    oracle_stores *s = user_data;
    if (!s->identity_public || !s->identity_private)
        return SG_ERR_UNKNOWN;
    *public_data = signal_buffer_copy(s->identity_public);
    *private_data = signal_buffer_copy(s->identity_private);
    return (*public_data && *private_data) ? 0 : SG_ERR_NOMEM;
}

static int iks_get_registration_id(void *user_data, uint32_t *registration_id)
{
    *registration_id = ((oracle_stores *)user_data)->registration_id;
    return 0;
}

static int iks_save_identity(const signal_protocol_address *address, uint8_t *key_data, size_t key_len, void *user_data)
{
    oracle_stores *s = user_data;
    if (!key_data) {
        kv_remove(&s->identities, address->name, address->name_len, address->device_id);
        return 0;
    }
    return kv_put(&s->identities, address->name, address->name_len, address->device_id, key_data, key_len);
}

static int iks_is_trusted(const signal_protocol_address *address, uint8_t *key_data, size_t key_len, void *user_data)
{
    (void)address;
    (void)key_data;
    (void)key_len;
    (void)user_data;
    return 1; /* trust everything: trust management is not under test */
}

/* sender key store: group sessions are not used by OMEMO; a stub that never
 * finds anything. */
static int sks_store(const signal_protocol_sender_key_name *name, uint8_t *record, size_t record_len,
                     uint8_t *user_record, size_t user_record_len, void *user_data)
{
    (void)name; (void)record; (void)record_len;
    (void)user_record; (void)user_record_len; (void)user_data;
    return 0;
}

static int sks_load(signal_buffer **record, signal_buffer **user_record,
                    const signal_protocol_sender_key_name *name, void *user_data)
{
    (void)record; (void)user_record; (void)name; (void)user_data;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The device                                                               */
/* ------------------------------------------------------------------------ */

typedef struct {
    signal_context *gctx;
    signal_protocol_store_context *store;
    oracle_stores stores;
    uint32_t version; /* 0 before setup, 3 = oldmemo, 4 = twomemo */
    uint32_t device_id;
} oracle;

static void log_func(int level, const char *message, size_t len, void *user_data)
{
    (void)user_data;
    if (level <= SG_LOG_NOTICE)
        fprintf(stderr, "oracle[libomemo-c %d] %.*s\n", level, (int)len, message);
}

static void oracle_init(oracle *o)
{
    memset(o, 0, sizeof *o);
    if (signal_context_create(&o->gctx, o) < 0) {
        fprintf(stderr, "oracle: signal_context_create failed\n");
        exit(2);
    }
    signal_crypto_provider provider = {
        .random_func = cp_random,
        .hmac_sha256_init_func = cp_hmac_init,
        .hmac_sha256_update_func = cp_hmac_update,
        .hmac_sha256_final_func = cp_hmac_final,
        .hmac_sha256_cleanup_func = cp_hmac_cleanup,
        .sha512_digest_init_func = cp_sha512_init,
        .sha512_digest_update_func = cp_sha512_update,
        .sha512_digest_final_func = cp_sha512_final,
        .sha512_digest_cleanup_func = cp_sha512_cleanup,
        .encrypt_func = cp_encrypt,
        .decrypt_func = cp_decrypt,
        .user_data = o,
    };
    signal_context_set_crypto_provider(o->gctx, &provider);
    signal_context_set_log_function(o->gctx, log_func);

    signal_protocol_store_context_create(&o->store, o->gctx);
    void *ud = &o->stores;
    signal_protocol_session_store ss = {
        .load_session_func = ss_load,
        .get_sub_device_sessions_func = ss_get_sub_device_sessions,
        .store_session_func = ss_store,
        .contains_session_func = ss_contains,
        .delete_session_func = ss_delete,
        .delete_all_sessions_func = ss_delete_all,
        .user_data = ud,
    };
    signal_protocol_pre_key_store pks = {
        .load_pre_key = pks_load,
        .store_pre_key = pks_store,
        .contains_pre_key = pks_contains,
        .remove_pre_key = pks_remove,
        .user_data = ud,
    };
    signal_protocol_signed_pre_key_store spks = {
        .load_signed_pre_key = spks_load,
        .store_signed_pre_key = spks_store,
        .contains_signed_pre_key = spks_contains,
        .remove_signed_pre_key = spks_remove,
        .user_data = ud,
    };
    signal_protocol_identity_key_store iks = {
        .get_identity_key_pair = iks_get_key_pair,
        .get_local_registration_id = iks_get_registration_id,
        .save_identity = iks_save_identity,
        .is_trusted_identity = iks_is_trusted,
        .user_data = ud,
    };
    signal_protocol_sender_key_store sks = {
        .store_sender_key = sks_store,
        .load_sender_key = sks_load,
        .user_data = ud,
    };
    signal_protocol_store_context_set_session_store(o->store, &ss);
    signal_protocol_store_context_set_pre_key_store(o->store, &pks);
    signal_protocol_store_context_set_signed_pre_key_store(o->store, &spks);
    signal_protocol_store_context_set_identity_key_store(o->store, &iks);
    signal_protocol_store_context_set_sender_key_store(o->store, &sks);
}

static void oracle_free(oracle *o)
{
    signal_protocol_store_context_destroy(o->store);
    signal_context_destroy(o->gctx);
    kv_clear(&o->stores.sessions);
    kv_clear(&o->stores.pre_keys);
    kv_clear(&o->stores.signed_pre_keys);
    kv_clear(&o->stores.identities);
    signal_buffer_bzero_free(o->stores.identity_public);
    signal_buffer_bzero_free(o->stores.identity_private);
}

/* A public key in the namespace's bundle format (see the table in
 * PROTOCOL.md). */
static signal_buffer *key_to_wire(const oracle *o, const ec_public_key *key, int is_identity)
{
    signal_buffer *buf = NULL;
    if (o->version == 3) {
        ec_public_key_serialize(&buf, key);          /* 0x05 || X25519 */
    } else if (is_identity) {
        buf = ec_public_key_get_ed(key);             /* Ed25519 (sign bit 0) */
    } else {
        ec_public_key_serialize_omemo(&buf, key);    /* raw X25519 */
    }
    return buf;
}

static int key_from_wire(const oracle *o, const uint8_t *data, size_t len, int is_identity,
                         ec_public_key **key, const char **why)
{
    if (o->version == 3) {
        if (len != 33 || data[0] != 0x05) {
            *why = "expected 33 bytes 0x05 || X25519";
            return -1;
        }
        return curve_decode_point_mont(key, data, len, o->gctx);
    }
    if (len != 32) {
        *why = is_identity ? "expected 32-byte Ed25519 key" : "expected 32-byte X25519 key";
        return -1;
    }
    if (is_identity)
        return curve_decode_point_ed(key, data, len, o->gctx);
    return curve_decode_point_mont(key, data, len, o->gctx);
}

static size_t key_material_len(const oracle *o)
{
    return o->version == 3 ? 32 : 48;
}

#define FAIL(...) do { out->len = 0; sb_printf(out, "err " __VA_ARGS__); goto done; } while (0)

static void cmd_setup(oracle *o, int argc, char **argv, strbuf *out)
{
    ratchet_identity_key_pair *ikp = NULL;
    session_signed_pre_key *spk = NULL;
    signal_protocol_key_helper_pre_key_list_node *pre_keys = NULL;
    signal_buffer *buf = NULL;
    uint64_t device_id, count;
    uint32_t version;
    int r;

    if (o->version) {
        sb_printf(out, "err setup was already done");
        return;
    }
    if (argc != 3)
        FAIL("usage: setup <ns> <device_id> <prekey_count>");
    if (!strcmp(argv[0], "oldmemo") || !strcmp(argv[0], "eu.siacs.conversations.axolotl"))
        version = 3;
    else if (!strcmp(argv[0], "twomemo") || !strcmp(argv[0], "urn:xmpp:omemo:2"))
        version = 4;
    else
        FAIL("unknown namespace '%s' (oldmemo or twomemo)", argv[0]);
    if (parse_uint(argv[1], INT32_MAX, &device_id) < 0)
        FAIL("device_id: not a decimal integer in 0..2^31-1: '%s'", argv[1]);
    if (parse_uint(argv[2], 0xFFFFFE, &count) < 0)
        FAIL("prekey_count: not a decimal integer: '%s'", argv[2]);

    o->version = version;
    o->device_id = (uint32_t)device_id;
    o->stores.registration_id = (uint32_t)device_id;

    if ((r = signal_protocol_key_helper_generate_identity_key_pair(&ikp, o->gctx)) < 0)
        FAIL("generate identity key pair: %s (%d)", sg_strerror(r), r);
    if ((r = ec_public_key_serialize(&o->stores.identity_public, ratchet_identity_key_pair_get_public(ikp))) < 0 ||
        (r = ec_private_key_serialize(&o->stores.identity_private, ratchet_identity_key_pair_get_private(ikp))) < 0)
        FAIL("serialize identity key pair: %s (%d)", sg_strerror(r), r);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    if ((r = signal_protocol_key_helper_generate_signed_pre_key(&spk, ikp, SIGNED_PRE_KEY_ID, now_ms, o->gctx)) < 0)
        FAIL("generate signed pre-key: %s (%d)", sg_strerror(r), r);
    if ((r = signal_protocol_signed_pre_key_store_key(o->store, spk)) < 0)
        FAIL("store signed pre-key: %s (%d)", sg_strerror(r), r);
    if (count > 0 &&
        (r = signal_protocol_key_helper_generate_pre_keys(&pre_keys, 1, (unsigned)count, o->gctx)) < 0)
        FAIL("generate pre-keys: %s (%d)", sg_strerror(r), r);

    sb_append(out, "ok ik=", 6);
    buf = key_to_wire(o, ratchet_identity_key_pair_get_public(ikp), 1);
    if (!buf)
        FAIL("serialize identity key");
    sb_b64_buf(out, buf);
    signal_buffer_free(buf);
    buf = NULL;

    sb_printf(out, " spk_id=%u spk=", session_signed_pre_key_get_id(spk));
    buf = key_to_wire(o, ec_key_pair_get_public(session_signed_pre_key_get_key_pair(spk)), 0);
    if (!buf)
        FAIL("serialize signed pre-key");
    sb_b64_buf(out, buf);
    signal_buffer_free(buf);
    buf = NULL;

    /* libomemo-c keeps two XEdDSA signatures on the signed pre-key: one over
     * the 33-byte 0x05-prefixed key (oldmemo) and one over the 32-byte raw
     * key (OMEMO 2). */
    sb_append(out, " spk_sig=", 9);
    if (version == 3)
        sb_b64(out, session_signed_pre_key_get_signature(spk), session_signed_pre_key_get_signature_len(spk));
    else
        sb_b64(out, session_signed_pre_key_get_signature_omemo(spk), session_signed_pre_key_get_signature_omemo_len(spk));

    sb_append(out, " prekeys=", 9);
    int first = 1;
    for (signal_protocol_key_helper_pre_key_list_node *n = pre_keys; n;
         n = signal_protocol_key_helper_key_list_next(n)) {
        session_pre_key *pk = signal_protocol_key_helper_key_list_element(n);
        if ((r = signal_protocol_pre_key_store_key(o->store, pk)) < 0)
            FAIL("store pre-key: %s (%d)", sg_strerror(r), r);
        buf = key_to_wire(o, ec_key_pair_get_public(session_pre_key_get_key_pair(pk)), 0);
        if (!buf)
            FAIL("serialize pre-key");
        sb_printf(out, "%s%u:", first ? "" : ",", session_pre_key_get_id(pk));
        sb_b64_buf(out, buf);
        signal_buffer_free(buf);
        buf = NULL;
        first = 0;
    }

done:
    if (out->len >= 3 && !memcmp(out->data, "err", 3)) {
        /* A failed setup leaves no half-made device behind. */
        o->version = 0;
        kv_clear(&o->stores.pre_keys);
        kv_clear(&o->stores.signed_pre_keys);
        signal_buffer_bzero_free(o->stores.identity_public);
        signal_buffer_bzero_free(o->stores.identity_private);
        o->stores.identity_public = o->stores.identity_private = NULL;
    }
    signal_buffer_free(buf);
    signal_protocol_key_helper_key_list_free(pre_keys);
    if (spk)
        SIGNAL_UNREF(spk);
    if (ikp)
        SIGNAL_UNREF(ikp);
}

static void cmd_encrypt(oracle *o, int argc, char **argv, strbuf *out)
{
    uint8_t *key_material = NULL, *ik_raw = NULL, *spk_raw = NULL, *sig_raw = NULL, *pk_raw = NULL;
    size_t km_len = 0, ik_len = 0, spk_len = 0, sig_len = 0, pk_len = 0;
    ec_public_key *ik = NULL, *spk = NULL, *pk = NULL;
    session_pre_key_bundle *bundle = NULL;
    session_builder *builder = NULL;
    session_cipher *cipher = NULL;
    ciphertext_message *msg = NULL;
    uint64_t peer, spk_id = 0, pk_id = 0;
    const char *why = "";
    int r;

    if (!o->version)
        FAIL("setup must be the first request");
    if (argc != 2 && argc != 8)
        FAIL("usage: encrypt <peer_device_id> <key_material> [<ik> <spk_id> <spk> <spk_sig> <pk_id> <pk>]");
    if (parse_uint(argv[0], INT32_MAX, &peer) < 0)
        FAIL("peer_device_id: not a decimal integer: '%s'", argv[0]);
    if (!(key_material = b64_decode(argv[1], &km_len)))
        FAIL("key_material: invalid base64");
    if (km_len != key_material_len(o))
        FAIL("key_material must be %zu bytes, got %zu", key_material_len(o), km_len);

    signal_protocol_address addr = { PEER_NAME, sizeof PEER_NAME - 1, (int32_t)peer };

    if (argc == 8) {
        if (!(ik_raw = b64_decode(argv[2], &ik_len)))
            FAIL("ik: invalid base64");
        if (parse_uint(argv[3], UINT32_MAX, &spk_id) < 0)
            FAIL("spk_id: not a decimal integer: '%s'", argv[3]);
        if (!(spk_raw = b64_decode(argv[4], &spk_len)))
            FAIL("spk: invalid base64");
        if (!(sig_raw = b64_decode(argv[5], &sig_len)))
            FAIL("spk_sig: invalid base64");
        if (parse_uint(argv[6], UINT32_MAX, &pk_id) < 0)
            FAIL("pk_id: not a decimal integer: '%s'", argv[6]);
        if (!(pk_raw = b64_decode(argv[7], &pk_len)))
            FAIL("pk: invalid base64");
        if (key_from_wire(o, ik_raw, ik_len, 1, &ik, &why) < 0)
            FAIL("ik: %s (got %zu bytes)", why, ik_len);
        if (key_from_wire(o, spk_raw, spk_len, 0, &spk, &why) < 0)
            FAIL("spk: %s (got %zu bytes)", why, spk_len);
        if (key_from_wire(o, pk_raw, pk_len, 0, &pk, &why) < 0)
            FAIL("pk: %s (got %zu bytes)", why, pk_len);
        if (sig_len != 64)
            FAIL("spk_sig: expected 64 bytes, got %zu", sig_len);

        /* The peer's registration id is unknown from a bundle; like Dino,
         * use its device id. It only ends up in the local session state. */
        if ((r = session_pre_key_bundle_create(&bundle, (uint32_t)peer, (int)peer, (uint32_t)pk_id, pk,
                                               (uint32_t)spk_id, spk, sig_raw, sig_len, ik)) < 0)
            FAIL("session_pre_key_bundle_create: %s (%d)", sg_strerror(r), r);
        if ((r = session_builder_create(&builder, o->store, &addr, o->gctx)) < 0)
            FAIL("session_builder_create: %s (%d)", sg_strerror(r), r);
        session_builder_set_version(builder, o->version);
        if ((r = session_builder_process_pre_key_bundle(builder, bundle)) < 0)
            FAIL("session_builder_process_pre_key_bundle: %s (%d)", sg_strerror(r), r);
    } else if (signal_protocol_session_contains_session(o->store, &addr) != 1) {
        FAIL("no session with device %u", (unsigned)peer);
    }

    if ((r = session_cipher_create(&cipher, o->store, &addr, o->gctx)) < 0)
        FAIL("session_cipher_create: %s (%d)", sg_strerror(r), r);
    session_cipher_set_version(cipher, o->version);
    if ((r = session_cipher_encrypt(cipher, key_material, km_len, &msg)) < 0)
        FAIL("session_cipher_encrypt: %s (%d)", sg_strerror(r), r);

    int kex = ciphertext_message_get_type(msg) == CIPHERTEXT_PREKEY_TYPE;
    sb_printf(out, "ok kex=%d data=", kex);
    sb_b64_buf(out, ciphertext_message_get_serialized(msg));

done:
    if (msg)
        SIGNAL_UNREF(msg);
    session_cipher_free(cipher);
    session_builder_free(builder);
    if (bundle)
        SIGNAL_UNREF(bundle);
    if (ik)
        SIGNAL_UNREF(ik);
    if (spk)
        SIGNAL_UNREF(spk);
    if (pk)
        SIGNAL_UNREF(pk);
    free(key_material);
    free(ik_raw);
    free(spk_raw);
    free(sig_raw);
    free(pk_raw);
}

static void cmd_decrypt(oracle *o, int argc, char **argv, strbuf *out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    uint64_t peer;
    pre_key_signal_message *pkmsg = NULL;
    signal_message *smsg = NULL;
    session_cipher *cipher = NULL;
    signal_buffer *plain = NULL;
    int r;

    if (!o->version)
        FAIL("setup must be the first request");
    if (argc != 3)
        FAIL("usage: decrypt <peer_device_id> <kex> <data>");
    if (parse_uint(argv[0], INT32_MAX, &peer) < 0)
        FAIL("peer_device_id: not a decimal integer: '%s'", argv[0]);
    if (strcmp(argv[1], "0") && strcmp(argv[1], "1"))
        FAIL("kex must be 0 or 1");
    int kex = argv[1][0] == '1';
    if (!(data = b64_decode(argv[2], &len)))
        FAIL("data: invalid base64");

    signal_protocol_address addr = { PEER_NAME, sizeof PEER_NAME - 1, (int32_t)peer };

    if ((r = session_cipher_create(&cipher, o->store, &addr, o->gctx)) < 0)
        FAIL("session_cipher_create: %s (%d)", sg_strerror(r), r);
    session_cipher_set_version(cipher, o->version);

    if (kex) {
        if (o->version == 3)
            r = pre_key_signal_message_deserialize(&pkmsg, data, len, o->gctx);
        else
            /* OMEMOKeyExchange has no registration id; the caller supplies
             * one for the session state. Use the sender's device id. */
            r = pre_key_signal_message_deserialize_omemo(&pkmsg, data, len, (uint32_t)peer, o->gctx);
        if (r < 0)
            FAIL("parse key exchange: %s (%d)", sg_strerror(r), r);
        if ((r = session_cipher_decrypt_pre_key_signal_message(cipher, pkmsg, NULL, &plain)) < 0)
            FAIL("session_cipher_decrypt_pre_key_signal_message: %s (%d)", sg_strerror(r), r);
    } else {
        if (signal_protocol_session_contains_session(o->store, &addr) != 1)
            FAIL("no session with device %u and no key exchange", (unsigned)peer);
        if (o->version == 3)
            r = signal_message_deserialize(&smsg, data, len, o->gctx);
        else
            r = signal_message_deserialize_omemo(&smsg, data, len, o->gctx);
        if (r < 0)
            FAIL("parse message: %s (%d)", sg_strerror(r), r);
        if ((r = session_cipher_decrypt_signal_message(cipher, smsg, NULL, &plain)) < 0)
            FAIL("session_cipher_decrypt_signal_message: %s (%d)", sg_strerror(r), r);
    }

    sb_append(out, "ok key_material=", 16);
    sb_b64_buf(out, plain);

done:
    signal_buffer_bzero_free(plain);
    if (pkmsg)
        SIGNAL_UNREF(pkmsg);
    if (smsg)
        SIGNAL_UNREF(smsg);
    session_cipher_free(cipher);
    free(data);
}

#undef FAIL

int main(void)
{
    oracle o;
    oracle_init(&o);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    strbuf out = { 0 };
    char **argv = NULL;
    size_t argv_cap = 0;

    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;

        /* Split on single spaces. */
        size_t argc = 0;
        char *p = line;
        for (;;) {
            if (argc + 1 >= argv_cap) {
                argv_cap = argv_cap ? argv_cap * 2 : 16;
                argv = realloc(argv, argv_cap * sizeof *argv);
                if (!argv)
                    exit(2);
            }
            argv[argc++] = p;
            char *sp = strchr(p, ' ');
            if (!sp)
                break;
            *sp = 0;
            p = sp + 1;
        }
        argv[argc] = NULL;

        const char *cmd = argv[0];
        out.len = 0;
        if (!strcmp(cmd, "quit"))
            break;
        else if (!strcmp(cmd, "setup"))
            cmd_setup(&o, (int)argc - 1, argv + 1, &out);
        else if (!strcmp(cmd, "encrypt"))
            cmd_encrypt(&o, (int)argc - 1, argv + 1, &out);
        else if (!strcmp(cmd, "decrypt"))
            cmd_decrypt(&o, (int)argc - 1, argv + 1, &out);
        else if (!strcmp(cmd, "seal") || !strcmp(cmd, "open"))
            sb_printf(&out, "err %s is not supported by the libomemo-c oracle "
                            "(libomemo-c implements only the ratchet layer)", cmd);
        else
            sb_printf(&out, "err unknown request '%s'", cmd);

        sb_append(&out, "\n", 1);
        fputs(out.data, stdout);
        fflush(stdout);
    }

    free(argv);
    free(line);
    free(out.data);
    oracle_free(&o);
    return 0;
}
