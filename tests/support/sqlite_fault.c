#include "sqlite_fault.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include <sqlite3.h>

/* An open file of the wrapper: the real file (the wrapped VFS's) follows it in the same block. */
typedef struct fault_file {
    sqlite3_file base;
    sqlite3_file *real;
    bool wal;
} fault_file_t;

static sqlite3_vfs *g_real;
static sqlite3_vfs g_vfs;
static _Atomic bool g_wal_sync;
static _Atomic long g_count;

static sqlite3_file *real_of(sqlite3_file *f)
{
    return ((fault_file_t *)f)->real;
}

static int f_close(sqlite3_file *f)
{
    sqlite3_file *r = real_of(f);
    return r->pMethods != NULL ? r->pMethods->xClose(r) : SQLITE_OK;
}

static int f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xRead(real_of(f), p, n, off);
}

static int f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    return real_of(f)->pMethods->xWrite(real_of(f), p, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

static int f_sync(sqlite3_file *f, int flags)
{
    int rc = real_of(f)->pMethods->xSync(real_of(f), flags);
    if (rc == SQLITE_OK && ((fault_file_t *)f)->wal && atomic_load(&g_wal_sync)) {
        atomic_fetch_add(&g_count, 1);
        return SQLITE_IOERR_FSYNC; /* the bytes are on disk; the caller is told otherwise */
    }
    return rc;
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int f_lock(sqlite3_file *f, int lock)
{
    return real_of(f)->pMethods->xLock(real_of(f), lock);
}

static int f_unlock(sqlite3_file *f, int lock)
{
    return real_of(f)->pMethods->xUnlock(real_of(f), lock);
}

static int f_check_reserved(sqlite3_file *f, int *out)
{
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
    return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int f_device(sqlite3_file *f)
{
    return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int f_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
    return real_of(f)->pMethods->xShmMap(real_of(f), pg, pgsz, extend, pp);
}

static int f_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return real_of(f)->pMethods->xShmLock(real_of(f), off, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
    real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int f_shm_unmap(sqlite3_file *f, int del)
{
    return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return real_of(f)->pMethods->xFetch(real_of(f), off, n, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static const sqlite3_io_methods g_methods = {
    3,           f_close,   f_read,     f_write,          f_truncate,     f_sync,
    f_file_size, f_lock,    f_unlock,   f_check_reserved, f_file_control, f_sector_size,
    f_device,    f_shm_map, f_shm_lock, f_shm_barrier,    f_shm_unmap,    f_fetch,
    f_unfetch,
};

static int f_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    fault_file_t *ff = (fault_file_t *)f;
    ff->real = (sqlite3_file *)(ff + 1);
    ff->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = g_real->xOpen(g_real, name, ff->real, flags, out_flags);
    /* SQLite closes a file only when its methods are set: only when the real one opened */
    f->pMethods = ff->real->pMethods != NULL ? &g_methods : NULL;
    return rc;
}

int test_sqlite_fault_install(void)
{
    if (g_real != NULL)
        return SQLITE_OK;
    sqlite3_vfs *real = sqlite3_vfs_find(NULL);
    if (real == NULL || real->iVersion < 2)
        return SQLITE_ERROR;
    /* the real VFS's functions, called with this one: its pAppData and sizes are the same */
    g_vfs = *real;
    g_vfs.szOsFile = (int)sizeof(fault_file_t) + real->szOsFile;
    g_vfs.zName = "fdn_test_fault";
    g_vfs.pNext = NULL;
    g_vfs.xOpen = f_open;
    g_real = real;
    return sqlite3_vfs_register(&g_vfs, 1);
}

void test_sqlite_fault_wal_sync(bool on)
{
    atomic_store(&g_wal_sync, on);
}

long test_sqlite_fault_count(void)
{
    return atomic_load(&g_count);
}
