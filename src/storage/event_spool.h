/* The event store's local spool (storage layer, private): a SQLite file holding batches that
 * could not reach a shared backend (PostgreSQL), fsynced before they are acknowledged, read
 * back oldest first for replay, and dropped once the backend committed them.
 *
 * Each batch keeps the unique ids (UUIDs) its events were given before their first attempt,
 * so a replay whose earlier attempt's outcome was unknown stores every event exactly once.
 * A batch no replay can ever take is moved to a quarantine table in the same file, never
 * deleted.
 *
 * Threads: one at a time (the store's writer thread). */
#ifndef FDN_STORAGE_EVENT_SPOOL_H
#define FDN_STORAGE_EVENT_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <fdn/events.h>

typedef struct fdn__spool fdn__spool_t;

/* One unique id per event, text form (FDN_UUID_STR_LEN chars and a NUL). */
typedef char fdn__spool_uid_t[FDN_UUID_STR_LEN + 1];

/* Open or create the spool file (journal WAL, synchronous FULL). max_bytes bounds what it
 * holds (the encoded events). 0, FDN_EIO, FDN_ECORRUPT, FDN_ENOMEM. */
int fdn__spool_open(fdn__spool_t **out, const char *path, uint64_t max_bytes, fdn_error_t *err);
void fdn__spool_close(fdn__spool_t *s);

/* Append a batch, committed and fsynced before this returns. 0; FDN_EUNAVAILABLE (it does not
 * fit under max_bytes: nothing written); FDN_EIO; FDN_ENOMEM. */
int fdn__spool_put(fdn__spool_t *s, const fdn_event_t *const *evs, const fdn__spool_uid_t *uids,
                   size_t n, fdn_error_t *err);

/* The oldest batches, whole, up to max_events events and max_bytes bytes of their records
 * in all (0: no byte bound; a record holds its event's payload, so the batches' payload stays
 * within it too), at least the oldest batch whatever its size, concatenated in order: *seq the
 * key of the last one (for fdn__spool_drop), *evs their n events (free with fdn_event_free each
 * and fdn__free the array), *uids their ids (fdn__free). A batch that does not decode ends the
 * peek before it when older ones do. 0; FDN_ENOENT (empty); FDN_ECORRUPT (the oldest batch
 * does not decode: *seq is its key, for fdn__spool_quarantine; the message names it); FDN_EIO;
 * FDN_ENOMEM. max_events 1 takes exactly the oldest batch. */
int fdn__spool_peek(fdn__spool_t *s, size_t max_events, uint64_t max_bytes, int64_t *seq,
                    fdn_event_t ***evs, fdn__spool_uid_t **uids, size_t *n, fdn_error_t *err);

/* Forget every batch up to seq (replayed). 0, FDN_EIO (the counts unchanged). */
int fdn__spool_drop(fdn__spool_t *s, int64_t seq, fdn_error_t *err);

/* Events and bytes held now (waiting for the replay; the quarantine's are not counted): the
 * batches' events (a damaged count, not positive, counts none) and their records' bytes. */
void fdn__spool_usage(const fdn__spool_t *s, uint64_t *events, uint64_t *bytes);

/* Batches (rows) held now, damaged ones too: the replay has work while this is not 0. */
uint64_t fdn__spool_batches(const fdn__spool_t *s);

/* Move batch seq, as it is (its columns copied, not decoded), from the spool to the
 * quarantine table with the time (at_ms, Unix ms), the error (code, its fdn_err_name) and
 * message that made it unreplayable, in one transaction committed like a put; *events (may be
 * NULL) the events it holds. The spool's usage no longer counts it; the quarantine's does,
 * within a bound of its own (the spool's max_bytes). The quarantine row has a key of its own:
 * an earlier quarantined batch with the same seq (the spool's counter lost) is no clash.
 * 0; FDN_ENOENT (no such batch); FDN_ENOSPC
 * (the quarantine cannot take its bytes: nothing moved); FDN_EIO. */
int fdn__spool_quarantine(fdn__spool_t *s, int64_t seq, int64_t at_ms, int code,
                          const char *message, uint64_t *events, fdn_error_t *err);

/* What the quarantine table holds: batches, the events and bytes they hold, and the FDN_E*
 * code of the newest one's error (0 when empty); counted at open, then kept. */
void fdn__spool_quarantine_usage(const fdn__spool_t *s, uint64_t *batches, uint64_t *events,
                                 uint64_t *bytes, int *last_error);

#endif
