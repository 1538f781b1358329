#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"

/* Messages: a worker says it is free (READY), or returns an item's RESULT or
 * FAIL (its error message); rank 0 answers with WORK: the next item's index
 * in d->items and its id (workers need no item list), or QUIT. Each starts
 * with the item's index. */
enum { TAG_READY = 1, TAG_RESULT, TAG_FAIL, TAG_WORK };
#define QUIT INT64_MAX

static int is_done(const sv_dispatch *d, size_t k) { return d->done && d->done[k]; }

/* ---------------------------------------------------------------- one process */

static int run_here(const sv_dispatch *d, sv_error *err) {
    for (size_t k = 0; k < d->n_items; k++) {
        if (d->stop && *d->stop) return SV_DISPATCH_STOPPED;
        void *result = NULL;
        size_t size = 0;
        if (!is_done(d, k)) {
            if (d->ops.run(d->user, d->items[k], &result, &size, err)) return SV_FAIL;
            sv_progress_tick(d->progress, 0);
        }
        int rc = d->ops.place(d->user, d->items[k], result, size, err);
        free(result);
        if (rc) return rc;
    }
    return SV_OK;
}

/* ---------------------------------------------------------------- messages */

/* index + payload in one message */
static int send_item(const sv_world *w, int to, int tag, int64_t k, const void *payload,
                     size_t size, sv_error *err) {
    unsigned char *msg = malloc(sizeof k + size);
    if (!msg) return sv_fail(err, "out of memory for an MPI message of %zu bytes", size);
    memcpy(msg, &k, sizeof k);
    if (size) memcpy(msg + sizeof k, payload, size);
    int rc = sv_world_send(w, to, tag, msg, sizeof k + size, err);
    free(msg);
    return rc;
}

/* ---------------------------------------------------------------- rank 0 */

typedef struct coordinator {
    const sv_dispatch *d;
    size_t next_run, next_place;    /* indices into d->items */
    void **held;                    /* [n_items] results not yet placed */
    size_t *held_size;
    int workers;                    /* not yet sent QUIT */
    int failed;
    sv_error failure;               /* the first failure, reported at the end */
} coordinator;

static void fail_once(coordinator *c, const sv_error *why) {
    if (!c->failed) c->failure = *why;
    c->failed = 1;
}

/* Places every item whose turn has come. */
static void place_ready(coordinator *c) {
    const sv_dispatch *d = c->d;
    while (!c->failed && c->next_place < d->n_items &&
           (is_done(d, c->next_place) || c->held[c->next_place])) {
        size_t k = c->next_place++;
        sv_error why;
        if (d->ops.place(d->user, d->items[k], c->held[k], c->held_size[k], &why))
            fail_once(c, &why);
        free(c->held[k]);
        c->held[k] = NULL;
    }
}

static void take_result(coordinator *c, int from, int64_t k, void *msg, size_t size) {
    const sv_dispatch *d = c->d;
    void *payload = malloc(size ? size : 1);
    if (!payload) {
        fail_once(c, &(sv_error){"out of memory for a result"});
        return;
    }
    memcpy(payload, (unsigned char *)msg + sizeof k, size);
    c->held[k] = payload, c->held_size[k] = size;
    sv_error why;
    if ((size_t)k != c->next_place && d->ops.hold &&
        d->ops.hold(d->user, d->items[k], payload, size, &why))
        fail_once(c, &why);
    place_ready(c);
    sv_progress_tick(d->progress, from); /* reported once it is kept */
}

/* The next item for a free worker, or QUIT once everything is out, a stop was
 * asked for or something failed. */
static int64_t next_work(coordinator *c) {
    const sv_dispatch *d = c->d;
    while (c->next_run < d->n_items && is_done(d, c->next_run)) c->next_run++;
    if (c->failed || (d->stop && *d->stop) || c->next_run == d->n_items) return QUIT;
    return (int64_t)c->next_run++;
}

/* One message from a worker, answered with its next item or QUIT. */
static int serve(coordinator *c, int from, int tag, void *msg, size_t size, sv_error *err) {
    int64_t k = -1;
    if (tag != TAG_READY) {
        if (size < sizeof k) return sv_fail(err, "rank %d sent a short message", from);
        memcpy(&k, msg, sizeof k);
        if (k < 0 || (size_t)k >= c->d->n_items)
            return sv_fail(err, "rank %d sent item %lld of %zu", from, (long long)k,
                           c->d->n_items);
        size -= sizeof k;
    }
    if (tag == TAG_RESULT) {
        take_result(c, from, k, msg, size);
    } else if (tag == TAG_FAIL) {
        sv_error why;
        snprintf(why.msg, sizeof why.msg, "%.*s", (int)size, (char *)msg + sizeof k);
        fail_once(c, &why);
    }
    int64_t next = next_work(c), id = next == QUIT ? 0 : (int64_t)c->d->items[next];
    if (next == QUIT) c->workers--;
    return send_item(c->d->world, from, TAG_WORK, next, &id, sizeof id, err);
}

static int coordinate(const sv_dispatch *d, sv_error *err) {
    coordinator c = {.d = d, .workers = d->world->size - 1};
    c.held = calloc(d->n_items ? d->n_items : 1, sizeof *c.held);
    c.held_size = calloc(d->n_items ? d->n_items : 1, sizeof *c.held_size);
    int rc = c.held && c.held_size ? SV_OK : sv_fail(err, "out of memory");
    if (rc == SV_OK) place_ready(&c); /* items done before a resume come first */
    while (rc == SV_OK && c.workers > 0) {
        int from, tag;
        void *msg;
        size_t size;
        /* a second signal stops waiting for the items still running */
        if (sv_world_recv(d->world, &from, &tag, &msg, &size, d->stop, 2, err)) {
            rc = d->stop && *d->stop >= 2 ? SV_DISPATCH_STOPPED : SV_FAIL;
            break;
        }
        rc = serve(&c, from, tag, msg, size, err);
        free(msg);
    }
    for (size_t k = 0; c.held && k < d->n_items; k++) free(c.held[k]);
    free(c.held), free(c.held_size);
    if (rc != SV_OK) {
        d->world->abandoned = 1; /* workers may still be running items */
        return rc;
    }
    if (c.failed) {
        *err = c.failure;
        return SV_FAIL;
    }
    return c.next_place == d->n_items ? SV_OK : SV_DISPATCH_STOPPED;
}

/* ---------------------------------------------------------------- other ranks */

static int work(const sv_dispatch *d, sv_error *err) {
    const sv_world *w = d->world;
    int rc = sv_world_send(w, 0, TAG_READY, NULL, 0, err);
    for (;;) {
        int from, tag;
        void *msg = NULL, *result = NULL;
        size_t size, result_size = 0;
        int64_t k = QUIT, id = -1;
        if (rc || (rc = sv_world_recv(w, &from, &tag, &msg, &size, NULL, 1, err))) return rc;
        if (tag == TAG_WORK && size == 2 * sizeof k) {
            memcpy(&k, msg, sizeof k);
            memcpy(&id, (char *)msg + sizeof k, sizeof id);
        }
        free(msg);
        if (k == QUIT || id < 0) return SV_OK;
        sv_error why;
        if (d->ops.run(d->user, (size_t)id, &result, &result_size, &why) == SV_OK)
            rc = send_item(w, 0, TAG_RESULT, k, result, result_size, err);
        else
            rc = send_item(w, 0, TAG_FAIL, k, why.msg, strlen(why.msg), err);
        free(result);
    }
}

int sv_dispatch_run(const sv_dispatch *d, sv_error *err) {
    if (d->world->size == 1) return run_here(d, err);
    return d->world->rank == 0 ? coordinate(d, err) : work(d, err);
}
