/*
 * metrics.h: request latency histograms, and the Prometheus text file
 * ([metrics] path, node_exporter's textfile collector) written every
 * [metrics] interval, atomically (a new file of a random name beside it,
 * fsync, rename).  README "Monitoring" lists the metrics.
 *
 * Thread-safety: metrics_observe() is lock-free (atomic counters) and may
 * run on any thread; metrics_start/stop are called by the main thread.
 */
#ifndef HK_METRICS_H
#define HK_METRICS_H

#include <stdint.h>

struct metrics;
struct server;

/* Caller must metrics_free(). */
int  metrics_new(struct metrics **mp);
void metrics_free(struct metrics *m);

/* Counts one request of op ("sign", "unauthenticated", ...) that took ns
 * nanoseconds.  m may be NULL. */
void metrics_observe(struct metrics *m, const char *op, uint64_t ns);

/* Counts one request refused before it proved its sender, by reason
 * (auth.h); lock-free.  m may be NULL. */
void metrics_refused(struct metrics *m, const char *reason);

/* Starts the thread that writes sv->cfg->metrics_path (none without a
 * path). */
int metrics_start(struct metrics *m, struct server *sv);
/* Stops it; the last file says hsmkey_up 0. */
void metrics_stop(struct metrics *m);

/* Writes the file once: 0, or HK_ERR_SYSTEM (logged). */
int
metrics_write(struct metrics *m, struct server *sv, const char *path, int up);

#endif /* HK_METRICS_H */
