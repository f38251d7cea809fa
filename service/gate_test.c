/* gate_test.c: the admission gate (gate.c): slots, FIFO order, the bounded
 * wait, hand-over of a slot, and no gate at all. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "gate.h"
#include "testutil.h"

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits (at most 5 s) until n threads wait in g. */
static void
wait_for_waiters(struct gate *g, unsigned int n)
{
	struct gate_stats st;
	int		  i;

	for (i = 0; i < 5000; i++) {
		gate_stats(g, &st);
		if (st.waiting == n) {
			return;
		}
		usleep(1000);
	}
	HK_TFAIL("%u waiters expected, %u waiting", n, st.waiting);
}

static void
test_no_gate(void)
{
	struct gate	 *g;
	struct gate_stats st;
	int		  i;

	PASS(gate_enter(NULL));
	gate_leave(NULL);
	PASS(gate_new(&g, 0, 0));
	for (i = 0; i < 1000; i++) {
		PASS(gate_enter(g));
	}
	for (i = 0; i < 1000; i++) {
		gate_leave(g);
	}
	gate_stats(g, &st);
	EQ_INT(st.in_use, 0);
	EQ_INT(st.busy, 0);
	gate_free(g);
	gate_free(NULL);
}

static void
test_slots_and_wait(void)
{
	struct gate	 *g;
	struct gate_stats st;
	uint64_t	  t0, dt, n;

	PASS(gate_new(&g, 2, 100));
	PASS(gate_enter(g));
	PASS(gate_enter(g));
	TRUE(!gate_busy_note(g, &n));
	t0 = now_ms();
	FAIL(gate_enter(g), HK_ERR_EXHAUSTED);
	dt = now_ms() - t0;
	TRUE(dt >= 95 && dt < 2000);
	TRUE(gate_busy_note(g, &n));
	EQ_INT(n, 1);
	TRUE(!gate_busy_note(g, &n)); /* at most once a second */
	gate_stats(g, &st);
	EQ_INT(st.slots, 2);
	EQ_INT(st.in_use, 2);
	EQ_INT(st.waiting, 0);
	EQ_INT(st.admitted, 2);
	EQ_INT(st.busy, 1);
	gate_leave(g);
	PASS(gate_enter(g));
	gate_leave(g);
	gate_leave(g);
	gate_stats(g, &st);
	EQ_INT(st.in_use, 0);
	gate_free(g);

	/* busy_after 0: refused at once */
	PASS(gate_new(&g, 1, 0));
	PASS(gate_enter(g));
	t0 = now_ms();
	FAIL(gate_enter(g), HK_ERR_EXHAUSTED);
	TRUE(now_ms() - t0 < 50);
	gate_leave(g);
	gate_free(g);
}

/* ---- FIFO: waiters get the slot in the order they came */

#define NFIFO 8

struct fifo {
	struct gate *g;
	atomic_int   next; /* where the next admitted thread writes */
	int	     order[NFIFO];
};

struct fifo_arg {
	struct fifo *f;
	int	     id;
	int	     r;
};

static void *
fifo_main(void *p)
{
	struct fifo_arg *a = p;

	if ((a->r = gate_enter(a->f->g)) == 0) {
		a->f->order[atomic_fetch_add(&a->f->next, 1)] = a->id;
		usleep(2000);
		gate_leave(a->f->g);
	}
	return NULL;
}

static void
test_fifo(void)
{
	struct fifo	  f;
	struct fifo_arg	  a[NFIFO];
	pthread_t	  th[NFIFO];
	struct gate_stats st;
	int		  i;

	memset(&f, 0, sizeof(f));
	PASS(gate_new(&f.g, 1, 10000));
	PASS(gate_enter(f.g)); /* held while the line forms */
	for (i = 0; i < NFIFO; i++) {
		a[i].f = &f;
		a[i].id = i;
		TRUE(pthread_create(&th[i], NULL, fifo_main, &a[i]) == 0);
		wait_for_waiters(f.g, (unsigned int)i + 1);
	}
	gate_leave(f.g);
	for (i = 0; i < NFIFO; i++) {
		pthread_join(th[i], NULL);
		PASS(a[i].r);
	}
	for (i = 0; i < NFIFO; i++) {
		EQ_INT(f.order[i], i);
	}
	gate_stats(f.g, &st);
	EQ_INT(st.in_use, 0);
	EQ_INT(st.waited, NFIFO);
	EQ_INT(st.admitted, NFIFO + 1);
	gate_free(f.g);
}

/* A waiter that gives up leaves the line; the one behind it still gets
 * the next slot, and the count of slots stays right. */
static void *
enter_main(void *p)
{
	struct fifo_arg *a = p;

	a->r = gate_enter(a->f->g);
	return NULL;
}

static void
test_give_up(void)
{
	struct fifo	  f;
	struct fifo_arg	  a[2];
	pthread_t	  th[2];
	struct gate_stats st;

	memset(&f, 0, sizeof(f));
	PASS(gate_new(&f.g, 1, 300));
	PASS(gate_enter(f.g));
	a[0].f = a[1].f = &f;
	TRUE(pthread_create(&th[0], NULL, enter_main, &a[0]) == 0);
	wait_for_waiters(f.g, 1);
	pthread_join(th[0], NULL);
	FAIL(a[0].r, HK_ERR_EXHAUSTED); /* gave up after 300 ms */
	TRUE(pthread_create(&th[1], NULL, enter_main, &a[1]) == 0);
	wait_for_waiters(f.g, 1);
	gate_leave(f.g); /* handed to the second waiter */
	pthread_join(th[1], NULL);
	PASS(a[1].r);
	gate_stats(f.g, &st);
	EQ_INT(st.in_use, 1);
	EQ_INT(st.waiting, 0);
	EQ_INT(st.busy, 1);
	gate_leave(f.g);
	gate_stats(f.g, &st);
	EQ_INT(st.in_use, 0);
	gate_free(f.g);
}

/* Many threads, few slots: never more inside than the slots. */
#define NSTRESS 16

static atomic_int inside, most;

static void *
stress_main(void *p)
{
	struct fifo_arg *a = p;
	int		 i, n, m;

	for (i = 0; i < 200; i++) {
		if (gate_enter(a->f->g) != 0) {
			a->r = -1;
			return NULL;
		}
		n = atomic_fetch_add(&inside, 1) + 1;
		while ((m = atomic_load(&most)) < n &&
		    !atomic_compare_exchange_weak(&most, &m, n)) {
		}
		usleep(50);
		atomic_fetch_sub(&inside, 1);
		gate_leave(a->f->g);
	}
	return NULL;
}

static void
test_stress(void)
{
	struct fifo	  f;
	struct fifo_arg	  a[NSTRESS];
	pthread_t	  th[NSTRESS];
	struct gate_stats st;
	int		  i;

	memset(&f, 0, sizeof(f));
	memset(a, 0, sizeof(a));
	PASS(gate_new(&f.g, 3, 30000));
	for (i = 0; i < NSTRESS; i++) {
		a[i].f = &f;
		TRUE(pthread_create(&th[i], NULL, stress_main, &a[i]) == 0);
	}
	for (i = 0; i < NSTRESS; i++) {
		pthread_join(th[i], NULL);
		EQ_INT(a[i].r, 0);
	}
	TRUE(atomic_load(&most) <= 3);
	TRUE(atomic_load(&most) >= 2);
	gate_stats(f.g, &st);
	EQ_INT(st.in_use, 0);
	EQ_INT(st.admitted, NSTRESS * 200);
	gate_free(f.g);
}

TEST_LIST = {
	{ "no_gate", test_no_gate },
	{ "slots_and_wait", test_slots_and_wait },
	{ "fifo", test_fifo },
	{ "give_up", test_give_up },
	{ "stress", test_stress },
	{ NULL, NULL },
};

TEST_MAIN
