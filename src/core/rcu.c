/*
 * DESIGN: the process-wide part of the liburcu-bp helpers (core/rcu.h): the ThreadSanitizer
 * sync object that stands for every grace period, and the fork handlers.
 *
 * Fork: liburcu-bp's registry lock and its call_rcu thread do not survive fork(2) by
 * themselves; its before/after-fork functions, registered once with pthread_atfork, quiesce
 * them in the parent and reset them in the child, so a child may keep using RCU.
 */
#include "core/rcu.h"

#include <pthread.h>

char fdn__rcu_tsan_sync;
char fdn__rcu_tsan_done;
_Atomic long fdn__rcu_pending;

static void fork_prepare(void)
{
    urcu_bp_call_rcu_before_fork();
    urcu_bp_before_fork();
}

static void fork_parent(void)
{
    urcu_bp_after_fork_parent();
    urcu_bp_call_rcu_after_fork_parent();
}

static void fork_child(void)
{
    urcu_bp_after_fork_child();
    urcu_bp_call_rcu_after_fork_child();
}

static pthread_once_t g_fork_once = PTHREAD_ONCE_INIT;

static void register_fork_handlers(void)
{
    (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
}

void fdn__rcu_setup(void)
{
    pthread_once(&g_fork_once, register_fork_handlers);
}
