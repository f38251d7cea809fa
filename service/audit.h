/*
 * audit.h: the append-only, hash-chained audit log ([audit] path), one JSON
 * object a line; the line format, the hash chain and the checkpoint
 * signing input are proto/audit_format.h's (shared with `hsmkey audit
 * verify`; README "Audit log" documents them).
 *
 * Group commit: audit_submit() queues an event and returns; one writer
 * thread writes every queued line with one write(2) and one fdatasync(2)
 * and only then calls each event's done() callback, with 0 (durable) or
 * HK_ERR_UNAVAILABLE (the batch could not be written: nothing of it is
 * kept).  The writer retries by itself: it reopens the path (so a repaired
 * or repointed path works again without a restart) and continues the
 * chain from the last durable line.
 *
 * Thread-safety: every function may be called from any thread once
 * audit_open() returned; done() callbacks run on the writer thread and
 * must not call audit_log().
 */
#ifndef HK_AUDIT_H
#define HK_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "audit_format.h"
#include "config.h"
#include "keyring.h"
#include "token.h"

#define AUDIT_KEY_NAME HK_AUDIT_KEY_NAME /* the key checkpoints sign with */

struct audit;

/* One event: audit_format.h's struct hk_audit_event, under the name the
 * service uses; the strings are copied by audit_submit(). */
#define audit_event hk_audit_event

/*
 * Opens the log at cfg->audit_path (NULL: *ap = NULL, auditing off; every
 * function accepts a NULL audit), repairs a torn last line, creates the
 * audit key in the token if it is missing, and starts the writer.  A path
 * that cannot be written is not an error here: the service starts, and
 * requests that need the log fail until it works.  Caller must
 * audit_close().
 */
int audit_open(struct audit **ap, const struct config *cfg, struct token *tok,
    struct keyring *kr, struct token_session *s);

/* Creates the audit key AUDIT_KEY_NAME (ecdsa-p256) in the token if it is
 * missing (bootstrap and every start). */
int audit_ensure_key(struct keyring *kr, struct token_session *s);

/* Writes a checkpoint, stops the writer and closes the log. */
void audit_close(struct audit *a);

/*
 * Queues ev; done(arg, r) is called once, from the writer thread, after
 * the line is durable (r 0) or its batch failed (HK_ERR_UNAVAILABLE).
 * Returns 0, or an error (then done is never called): HK_ERR_EXHAUSTED
 * when too many events wait.
 */
int audit_submit(struct audit *a, const struct audit_event *ev,
    void (*done)(void *, int), void			   *arg);

/* Queues ev and waits until it is durable: 0 or HK_ERR_UNAVAILABLE. */
int audit_log(struct audit *a, const struct audit_event *ev);

/* The client of the lines the service writes by itself: not a client id
 * ([A-Za-z0-9]... ), so no client can be mistaken for it. */
#define AUDIT_SERVICE_CLIENT "-"

/*
 * Queues the line of a change the service made by itself (client
 * AUDIT_SERVICE_CLIENT, secret 0, no nonce, status OK): op "overlap-end",
 * "grace-end", "delay-end", "rotate".  Does not wait for the disk; a line
 * that cannot be queued or written is logged.  a may be NULL.
 * (audit_note.c)
 */
void
audit_note(struct audit *a, const char *op, const char *key, uint32_t version);

/*
 * Counts a request refused before it proved who sent it: client is the id
 * it claimed (checked here; "?" if none or not an id), op the refusal's
 * ("unauthenticated", "replay", "malformed"), reason a static word
 * ("bad-mac", "unknown-client", ...).  One line per (client, reason) is
 * written when [audit] refused_interval ends, its count in "items", with
 * no fsync of its own; past REFUSALS_SLOTS - 1 pairs the rest share one line
 * (client "?", reason "other").  Never waits for the disk.  a may be NULL.
 */
void audit_refused(struct audit *a, const char *client, const char *op,
    const char *reason, int status);

/* 1 when the last write worked (or auditing is off); else 0 and why gets
 * "audit log PATH cannot be written: REASON". */
int audit_ready(struct audit *a, char *why, size_t len);

/* "ok", "off" or the reason the log cannot be written, into buf. */
int audit_health(struct audit *a, char *buf, size_t len);

/* Asks the writer to rotate the log now (SIGHUP). */
void audit_rotate(struct audit *a);

/* 1 when a request of op, that changes state or not, must have its line
 * before its reply: every change, and every sign with [audit] signs.
 * 0 when auditing is off. */
int audit_wants(const struct audit *a, const char *op, int changes);

#endif /* HK_AUDIT_H */
