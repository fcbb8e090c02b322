/* libFuzzer target: the etcd gateway's formats (logic/etcd_codec.c) and the shared registry's
 * entry values (infra/registry_etcd.c). The first byte picks the parser; the rest is its input.
 *   0  base64: a decoded text encodes back to exactly the input (strict decoding), and any
 *      bytes encode then decode back to themselves
 *   1  a watch stream: split into lines, each parsed as a watch message
 *   2  a range answer
 *   3  an etcd URL
 *   4  an entry value under a key made of the first line
 * Every parser must return 0 or its documented codes, with a message when it has an err. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "infra/registry_shared.h"
#include "logic/etcd_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int rc, const fdn_error_t *err)
{
    if (rc != 0 && rc != FDN_EPARSE && rc != FDN_EEXTERNAL && rc != FDN_ENOMEM)
        abort();
    if (rc != 0 && err->message[0] == '\0')
        abort();
}

static void fuzz_b64(const char *s, size_t n)
{
    size_t cap = n / 4 * 3 + 1;
    char *dec = malloc(cap);
    char *enc = malloc(fdn__b64_encoded_len(n) + 1);
    int64_t dl = fdn__b64_decode(dec, cap, s, n);
    if (dl >= 0) {
        char *back = malloc(fdn__b64_encoded_len((size_t)dl) + 1);
        size_t bl = fdn__b64_encode(back, fdn__b64_encoded_len((size_t)dl) + 1, dec, (size_t)dl);
        if (bl != n || memcmp(back, s, n) != 0)
            abort();
        free(back);
    } else if (dl != FDN_EPARSE) {
        abort();
    }
    size_t el = fdn__b64_encode(enc, fdn__b64_encoded_len(n) + 1, s, n);
    if (el != fdn__b64_encoded_len(n))
        abort();
    char *round = malloc(n + 1);
    if (fdn__b64_decode(round, n + 1, enc, el) != (int64_t)n || memcmp(round, s, n) != 0)
        abort();
    free(round);
    free(dec);
    free(enc);
}

static void fuzz_watch(const char *s, size_t n)
{
    size_t off = 0, l;
    while ((l = fdn__etcd_line_len(s + off, n - off)) > 0) {
        fdn__etcd_watch_msg_t m;
        fdn_error_t err = FDN_ERROR_INIT;
        int rc = fdn__etcd_watch_msg_parse(s + off, l, &m, &err);
        check_err(rc, &err);
        if (rc == 0) {
            for (size_t i = 0; i < m.nevents; i++)
                if (m.events[i].kv.key == NULL || m.events[i].kv.key[m.events[i].kv.keylen] != 0)
                    abort();
            fdn__etcd_watch_msg_clear(&m);
        }
        off += l;
    }
}

static void fuzz_range(const char *s, size_t n)
{
    fdn__etcd_range_t r;
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__etcd_range_parse(s, n, &r, &err);
    check_err(rc, &err);
    if (rc == 0) {
        if (r.revision <= 0 || (r.n > 0 && r.kvs == NULL))
            abort();
        fdn__etcd_range_clear(&r);
    }
}

static void fuzz_url(const char *s, size_t n)
{
    char *z = malloc(n + 1);
    memcpy(z, s, n);
    z[n] = '\0';
    char out[512];
    fdn_error_t err = FDN_ERROR_INIT;
    int rc = fdn__etcd_url_check(z, out, sizeof(out), &err);
    if (rc != 0 && (rc != FDN_EINVAL || err.message[0] == '\0'))
        abort();
    if (rc == 0 && strncmp(out, "http", 4) != 0)
        abort();
    free(z);
}

static void fuzz_value(const char *s, size_t n)
{
    size_t kl = fdn__etcd_line_len(s, n);
    if (kl == 0)
        return;
    char *mem = fdn__malloc(n + 2);
    memcpy(mem, s, kl - 1);
    mem[kl - 1] = '\0';
    memcpy(mem + kl, s + kl, n - kl);
    mem[n] = '\0';
    fdn__etcd_kv_t kv = {mem, kl - 1, mem + kl, n - kl, 1, 2, 1, 0};
    fdn_registry_instance_t *i = NULL;
    int rc = fdn__registry_instance_from_kv("/p/", 3, &kv, 4096, &i);
    if (rc != 0 && rc != FDN_EPARSE && rc != FDN_ENOMEM)
        abort();
    if (rc == 0) {
        if (strchr(i->service, '/') || strchr(i->instance, '/') || i->service[0] == '\0' ||
            i->instance[0] == '\0')
            abort();
        fdn__registry_instance_unref(i);
    }
    fdn__free(mem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 5) {
    case 0:
        fuzz_b64(s, n);
        break;
    case 1:
        fuzz_watch(s, n);
        break;
    case 2:
        fuzz_range(s, n);
        break;
    case 3:
        fuzz_url(s, n);
        break;
    default:
        fuzz_value(s, n);
        break;
    }
    return 0;
}
