/* An in-memory SQLite VFS for fuzz targets (not a target itself: CMake builds fuzz/fuzz_*.c
 * only). Files live in a small table of named buffers the target fills and reads directly,
 * so SQLite's pager, WAL and B-tree code run on the input's bytes without a system call.
 *
 * What it models: named files (a database, its -wal, -journal, -shm names), short reads
 * (zero-filled, SQLITE_IOERR_SHORT_READ as the unix VFS), truncation, deletion, the
 * "exists" test of xAccess as the unix VFS does it (a file of size 0 does not count), and
 * WAL shared memory: zeroed regions shared by the handles of one database file, as the unix
 * VFS's -shm file is (so a second connection, the event file's read connection, sees the
 * first one's commits), freed with the last handle that mapped them (the next open rebuilds
 * the WAL index from the -wal file, as the first connection to a unix database does). Locks
 * always succeed (one thread: the connections take turns, none holds a transaction while
 * another runs). What it does not: real locking, I/O errors, fsync. Randomness, sleep and time go
 * to the default VFS. Single-threaded: the target must not use it from two threads. */
#ifndef FDN_FUZZ_MEMVFS_H
#define FDN_FUZZ_MEMVFS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "fuzz_util.h"

#define MEMVFS_FILES       8
#define MEMVFS_NAME        256
#define MEMVFS_SHM_REGIONS 16

typedef struct memvfs_buf {
    char name[MEMVFS_NAME]; /* "" = free slot */
    uint8_t *p;
    size_t n, cap;
    int nopen;
    void *shm[MEMVFS_SHM_REGIONS]; /* WAL shared memory of a database file */
    int shm_users;                 /* handles that mapped it */
} memvfs_buf_t;

typedef struct memvfs_file {
    sqlite3_file base;
    memvfs_buf_t *buf; /* a named file, or the private one below */
    memvfs_buf_t anon; /* a temporary file without a name */
    bool delete_close;
    bool shm_mapped; /* this handle counts in buf->shm_users */
} memvfs_file_t;

static memvfs_buf_t memvfs_files[MEMVFS_FILES];
static sqlite3_vfs *memvfs_base; /* the default VFS at registration */

static memvfs_buf_t *memvfs_find(const char *name)
{
    for (int i = 0; i < MEMVFS_FILES; i++)
        if (memvfs_files[i].name[0] != '\0' && strcmp(memvfs_files[i].name, name) == 0)
            return &memvfs_files[i];
    return NULL;
}

static memvfs_buf_t *memvfs_create(const char *name)
{
    memvfs_buf_t *b = memvfs_find(name);
    if (b != NULL)
        return b;
    if (strlen(name) >= MEMVFS_NAME)
        return NULL;
    for (int i = 0; i < MEMVFS_FILES; i++) {
        b = &memvfs_files[i];
        if (b->name[0] == '\0') {
            memcpy(b->name, name, strlen(name) + 1);
            b->n = 0;
            return b;
        }
    }
    return NULL;
}

static int memvfs_reserve(memvfs_buf_t *b, size_t n)
{
    if (n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* For the target: a file's bytes (created or replaced), its bytes, its removal. */
static void memvfs_put(const char *name, const void *p, size_t n)
{
    memvfs_buf_t *b = memvfs_create(name);
    if (b == NULL || memvfs_reserve(b, n) != 0)
        abort();
    if (n > 0)
        memcpy(b->p, p, n);
    b->n = n;
}

static const memvfs_buf_t *memvfs_get(const char *name)
{
    return memvfs_find(name);
}

static void memvfs_remove(const char *name)
{
    memvfs_buf_t *b = memvfs_find(name);
    if (b == NULL)
        return;
    b->n = 0;
    if (b->nopen == 0)
        b->name[0] = '\0'; /* an open handle keeps its (now empty) file, as unlink would not */
}

/* A database file and its companions (-wal, -shm, -journal) removed. */
static void memvfs_remove_db(const char *db)
{
    static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        char name[MEMVFS_NAME];
        int n = snprintf(name, sizeof name, "%s%s", db, ext[i]);
        if (n < 0 || (size_t)n >= sizeof name)
            abort();
        memvfs_remove(name);
    }
}

/* A copy of a file's bytes (the file must exist); aborts when out of memory. */
static fdn_fuzz_blob_t memvfs_copy(const char *name)
{
    const memvfs_buf_t *f = memvfs_get(name);
    if (f == NULL)
        abort();
    fdn_fuzz_blob_t b = {fdn_fuzz_dup(f->p, f->n), f->n};
    return b;
}

/* A handle's use of its file's shared memory ends; the last one frees it. */
static void memvfs_shm_release(memvfs_file_t *m)
{
    if (!m->shm_mapped)
        return;
    m->shm_mapped = false;
    if (--m->buf->shm_users > 0)
        return;
    for (int i = 0; i < MEMVFS_SHM_REGIONS; i++) {
        free(m->buf->shm[i]);
        m->buf->shm[i] = NULL;
    }
}

static int memvfs_close(sqlite3_file *f)
{
    memvfs_file_t *m = (memvfs_file_t *)f;
    memvfs_shm_release(m);
    if (m->buf == &m->anon) {
        free(m->anon.p);
    } else {
        m->buf->nopen--;
        if (m->delete_close) {
            m->buf->n = 0;
            m->buf->name[0] = '\0';
        }
    }
    return SQLITE_OK;
}

static int memvfs_read(sqlite3_file *f, void *out, int amt, sqlite3_int64 off)
{
    memvfs_buf_t *b = ((memvfs_file_t *)f)->buf;
    size_t have = (size_t)off < b->n ? b->n - (size_t)off : 0;
    if (have >= (size_t)amt) {
        memcpy(out, b->p + off, (size_t)amt);
        return SQLITE_OK;
    }
    if (have > 0)
        memcpy(out, b->p + off, have);
    memset((uint8_t *)out + have, 0, (size_t)amt - have);
    return SQLITE_IOERR_SHORT_READ;
}

static int memvfs_write(sqlite3_file *f, const void *p, int amt, sqlite3_int64 off)
{
    memvfs_buf_t *b = ((memvfs_file_t *)f)->buf;
    size_t end = (size_t)off + (size_t)amt;
    if (memvfs_reserve(b, end) != 0)
        return SQLITE_IOERR_NOMEM;
    if ((size_t)off > b->n)
        memset(b->p + b->n, 0, (size_t)off - b->n);
    memcpy(b->p + off, p, (size_t)amt);
    if (end > b->n)
        b->n = end;
    return SQLITE_OK;
}

static int memvfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    memvfs_buf_t *b = ((memvfs_file_t *)f)->buf;
    if ((size_t)size < b->n)
        b->n = (size_t)size;
    return SQLITE_OK;
}

static int memvfs_sync(sqlite3_file *f, int flags)
{
    (void)f;
    (void)flags;
    return SQLITE_OK;
}

static int memvfs_size(sqlite3_file *f, sqlite3_int64 *size)
{
    *size = (sqlite3_int64)((memvfs_file_t *)f)->buf->n;
    return SQLITE_OK;
}

static int memvfs_lock(sqlite3_file *f, int level)
{
    (void)f;
    (void)level;
    return SQLITE_OK;
}

static int memvfs_reserved(sqlite3_file *f, int *out)
{
    (void)f;
    *out = 0;
    return SQLITE_OK;
}

static int memvfs_fcntl(sqlite3_file *f, int op, void *arg)
{
    (void)f;
    (void)op;
    (void)arg;
    return SQLITE_NOTFOUND;
}

static int memvfs_sector(sqlite3_file *f)
{
    (void)f;
    return 4096;
}

static int memvfs_caps(sqlite3_file *f)
{
    (void)f;
    return SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static int memvfs_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
    memvfs_file_t *m = (memvfs_file_t *)f;
    memvfs_buf_t *b = m->buf;
    *pp = NULL;
    if (region < 0 || region >= MEMVFS_SHM_REGIONS)
        return SQLITE_IOERR_SHMMAP;
    if (!m->shm_mapped) {
        m->shm_mapped = true;
        b->shm_users++;
    }
    if (b->shm[region] == NULL) {
        if (!extend)
            return SQLITE_OK;
        b->shm[region] = calloc(1, (size_t)size); /* SQLite maps every region at one size */
        if (b->shm[region] == NULL)
            return SQLITE_IOERR_NOMEM;
    }
    *pp = b->shm[region];
    return SQLITE_OK;
}

static int memvfs_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    (void)f;
    (void)offset;
    (void)n;
    (void)flags;
    return SQLITE_OK;
}

static void memvfs_shm_barrier(sqlite3_file *f)
{
    (void)f;
    /* a full barrier; a seq_cst read-modify-write is one too, and ThreadSanitizer (which does
     * not model fences: gcc's -Wtsan) understands it */
    static int barrier_word;
    (void)__atomic_fetch_add(&barrier_word, 0, __ATOMIC_SEQ_CST);
}

static int memvfs_shm_unmap(sqlite3_file *f, int delete_flag)
{
    (void)delete_flag;
    memvfs_shm_release((memvfs_file_t *)f);
    return SQLITE_OK;
}

static const sqlite3_io_methods memvfs_io = {
    2,
    memvfs_close,
    memvfs_read,
    memvfs_write,
    memvfs_truncate,
    memvfs_sync,
    memvfs_size,
    memvfs_lock,
    memvfs_lock,
    memvfs_reserved,
    memvfs_fcntl,
    memvfs_sector,
    memvfs_caps,
    memvfs_shm_map,
    memvfs_shm_lock,
    memvfs_shm_barrier,
    memvfs_shm_unmap,
    NULL,
    NULL,
};

static int memvfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags,
                       int *out_flags)
{
    (void)vfs;
    memvfs_file_t *m = (memvfs_file_t *)f;
    memset(m, 0, sizeof *m);
    if (name == NULL) {
        m->buf = &m->anon;
    } else {
        m->buf = (flags & SQLITE_OPEN_CREATE) ? memvfs_create(name) : memvfs_find(name);
        if (m->buf == NULL)
            return SQLITE_CANTOPEN;
        m->buf->nopen++;
        m->delete_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
    }
    if (out_flags != NULL)
        *out_flags = flags;
    m->base.pMethods = &memvfs_io;
    return SQLITE_OK;
}

static int memvfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    (void)sync_dir;
    memvfs_remove(name);
    return SQLITE_OK;
}

static int memvfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    const memvfs_buf_t *b = memvfs_find(name);
    *out = b != NULL && (flags != SQLITE_ACCESS_EXISTS || b->n > 0);
    return SQLITE_OK;
}

static int memvfs_fullname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    sqlite3_snprintf(n, out, "%s", name);
    return SQLITE_OK;
}

static int memvfs_random(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return memvfs_base->xRandomness(memvfs_base, n, out);
}

static int memvfs_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return memvfs_base->xSleep(memvfs_base, us);
}

static int memvfs_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return memvfs_base->xCurrentTime(memvfs_base, out);
}

static int memvfs_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return memvfs_base->xCurrentTimeInt64(memvfs_base, out);
}

static int memvfs_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    if (n > 0)
        out[0] = '\0';
    return 0;
}

static sqlite3_vfs memvfs_vfs = {
    2,
    (int)sizeof(memvfs_file_t),
    MEMVFS_NAME,
    NULL,
    "fdn-fuzz-mem",
    NULL,
    memvfs_open,
    memvfs_delete,
    memvfs_access,
    memvfs_fullname,
    NULL,
    NULL,
    NULL,
    NULL,
    memvfs_random,
    memvfs_sleep,
    memvfs_time,
    memvfs_last_error,
    memvfs_time64,
    NULL,
    NULL,
    NULL,
};

/* Make the in-memory VFS the default one (sqlite3_open* without a VFS name use it) or give
 * the default back to the VFS that was before (the unix one, real files). */
static void memvfs_use(bool on)
{
    if (memvfs_base == NULL) {
        memvfs_base = sqlite3_vfs_find(NULL);
        if (memvfs_base == NULL)
            abort();
    }
    if (sqlite3_vfs_register(on ? &memvfs_vfs : memvfs_base, 1) != SQLITE_OK)
        abort();
}

#endif
