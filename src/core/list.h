/* Intrusive doubly linked lists: liburcu's plain (non-RCU) list, struct cds_list_head with
 * cds_list_add / cds_list_add_tail / cds_list_del / cds_list_empty, and entry macros that
 * compile cleanly under clang's -Wcast-align (liburcu's own cast a char pointer straight to
 * the entry type). One list implementation for the library (pool, limiter key store). */
#ifndef FDN_CORE_LIST_H
#define FDN_CORE_LIST_H

#include <stddef.h>

#include <urcu/list.h>

/* The entry of type `type` whose member `member` is the list node `ptr`. */
#define fdn__list_entry(ptr, type, member)                                                         \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* The first entry of a non-empty list. */
#define fdn__list_first_entry(head, type, member) fdn__list_entry((head)->next, type, member)

/* Iterate over the entries; the body must not remove `pos`. */
#define fdn__list_for_each_entry(pos, head, member)                                                \
    for ((pos) = fdn__list_entry((head)->next, __typeof__(*(pos)), member);                        \
         &(pos)->member != (head);                                                                 \
         (pos) = fdn__list_entry((pos)->member.next, __typeof__(*(pos)), member))

/* Iterate over the entries; the body may remove `pos` (`n` holds the next one). */
#define fdn__list_for_each_entry_safe(pos, n, head, member)                                        \
    for ((pos) = fdn__list_entry((head)->next, __typeof__(*(pos)), member),                        \
        (n) = fdn__list_entry((pos)->member.next, __typeof__(*(pos)), member);                     \
         &(pos)->member != (head);                                                                 \
         (pos) = (n), (n) = fdn__list_entry((n)->member.next, __typeof__(*(n)), member))

#endif
