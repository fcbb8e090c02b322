/*
 * DESIGN: cached process and thread ids and buffered kernel randomness (core/ident.h).
 *
 * State: g_pid (0 = not read yet) process-wide; per thread (initial-exec TLS, read on every
 * event) the tid (0 = not read yet) and a 512-byte buffer of getrandom(2) output with its read
 * position. Bytes handed out are zeroed in the buffer, so no byte is given twice.
 *
 * Fork: on_fork_child runs in the child's only thread (the one that forked): it clears g_pid
 * and that thread's tid and buffer. Other threads do not exist in the child. The handler is
 * registered once (pthread_once) before the first value is cached, so no cached value can
 * cross a fork unhandled.
 */
#include "core/ident.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fdn/error.h>

#include "core/alloc.h"

#define RND_BYTES 512u

typedef struct ident_tls {
    uint32_t tid;
    uint32_t rnd_pos;   /* bytes of rnd already handed out */
    uint32_t rnd_ready; /* 0: rnd holds nothing (a new thread, or after fork) */
    unsigned char rnd[RND_BYTES];
} ident_tls_t;

static _Thread_local ident_tls_t t_id FDN_TLS_IE;
static _Atomic uint32_t g_pid;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_store_explicit(&g_pid, 0, memory_order_relaxed);
    t_id.tid = 0;
    t_id.rnd_ready = 0;
    memset(t_id.rnd, 0, sizeof(t_id.rnd));
}

static void register_fork_handler(void)
{
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

uint32_t fdn__pid(void)
{
    uint32_t p = atomic_load_explicit(&g_pid, memory_order_relaxed);
    if (FDN_LIKELY(p != 0))
        return p;
    pthread_once(&g_once, register_fork_handler);
    p = (uint32_t)getpid();
    atomic_store_explicit(&g_pid, p, memory_order_relaxed);
    return p;
}

uint32_t fdn__tid(void)
{
    if (FDN_LIKELY(t_id.tid != 0))
        return t_id.tid;
    pthread_once(&g_once, register_fork_handler);
    t_id.tid = (uint32_t)syscall(SYS_gettid);
    return t_id.tid;
}

int fdn__random16(unsigned char b[16])
{
    ident_tls_t *t = &t_id;
    if (FDN_UNLIKELY(!t->rnd_ready || t->rnd_pos + 16 > RND_BYTES)) {
        pthread_once(&g_once, register_fork_handler);
        size_t got = 0;
        while (got < RND_BYTES) {
            ssize_t n = getrandom(t->rnd + got, RND_BYTES - got, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return FDN_EIO;
            }
            got += (size_t)n;
        }
        t->rnd_pos = 0;
        t->rnd_ready = 1;
    }
    memcpy(b, t->rnd + t->rnd_pos, 16);
    memset(t->rnd + t->rnd_pos, 0, 16);
    t->rnd_pos += 16;
    return 0;
}
