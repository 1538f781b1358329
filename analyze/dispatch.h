/* Independent work items, run by whichever process is free and taken back in
 * order: the loop under calibrate, eval and study.
 *
 * In a world of one (no mpirun) each item runs here, in order. Under mpirun
 * rank 0 hands out items one at a time, each to the next rank that asks (so
 * slow and fast nodes balance), and takes every result back: `place` sees
 * them in item order, each as soon as every item before it is placed, and
 * `hold` sees a result that came early, before it waits for its turn (the
 * caller can keep it somewhere safe). Rank 0 computes nothing itself: it stays
 * free to place a result the moment it arrives, and it sleeps between polls
 * (world.h), so it can share a node with a worker rank.
 *
 * Stopping. When *stop becomes 1 (a SIGINT or SIGTERM on rank 0) no more items
 * are handed out, the ones running are waited for and placed or held, and
 * sv_dispatch returns SV_DISPATCH_STOPPED; at 2 it stops waiting. An item that
 * fails on a worker stops the run the same way, and sv_dispatch returns
 * SV_FAIL with the worker's message once the others are in. */
#ifndef SV_DISPATCH_H
#define SV_DISPATCH_H

#include <stddef.h>

#include "progress.h"
#include "status.h"
#include "world.h"

#define SV_DISPATCH_STOPPED 1

typedef struct sv_dispatch_ops {
    /* Runs item `item` here; its result as malloc'd bytes the dispatcher frees. */
    int (*run)(void *user, size_t item, void **result, size_t *size, sv_error *err);
    /* Rank 0: item's result in its turn. result is NULL for an item the caller
     * marked done (it holds that result itself). */
    int (*place)(void *user, size_t item, const void *result, size_t size, sv_error *err);
    /* Rank 0, may be NULL: item finished before an earlier one and waits. */
    int (*hold)(void *user, size_t item, const void *result, size_t size, sv_error *err);
} sv_dispatch_ops;

typedef struct sv_dispatch {
    sv_world *world;            /* marked abandoned when rank 0 stops waiting */
    const size_t *items;        /* item ids in the order they are placed */
    const unsigned char *done;  /* [n_items] or NULL: 1 = not to run, only placed */
    size_t n_items;
    sv_dispatch_ops ops;
    void *user;
    sv_progress *progress;      /* ticked per item run; may be NULL */
    const volatile int *stop;   /* may be NULL */
} sv_dispatch;

/* Runs every item not done and places every item. Every rank of the world
 * calls it; only rank 0's items, done and n_items count (workers get the ids
 * from rank 0). Returns SV_OK, SV_FAIL or
 * SV_DISPATCH_STOPPED on rank 0; on workers SV_OK unless their link to rank 0
 * failed. */
int sv_dispatch_run(const sv_dispatch *d, sv_error *err);

#endif
