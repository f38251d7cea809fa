/*
 * faultp11_test.c: the fault-injecting module against a throw-away SoftHSM
 * token, loaded through p11-kit as pkcs11/token.c loads a module: fail with
 * count and after, delay, limit (in arrival order), drop, idle, kill, a
 * malformed line, the log.  $FAULTP11
 * names the module (tests/faultp11/meson.build).
 */
#define _GNU_SOURCE

#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>

#undef TRUE /* pkcs11.h's; testutil.h has its own */
#include "testtoken.h"
#include "testutil.h"

#define NSESSIONS 4

static CK_FUNCTION_LIST *f;
static CK_SESSION_HANDLE sessions[NSESSIONS];
static CK_OBJECT_HANDLE	 priv;
static char		 ctl[PATH_MAX], logpath[PATH_MAX];

/* Replaces the control file as the tests do: a temp file renamed over. */
static void
write_ctl(const char *text)
{
	char tmp[PATH_MAX + 8];

	snprintf(tmp, sizeof(tmp), "%s.tmp", ctl);
	testtoken_write(tmp, text, 0600);
	TRUE(rename(tmp, ctl) == 0);
}

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A session P-256 key pair. */
static void
make_key(CK_SESSION_HANDLE s)
{
	static const CK_BYTE p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
		0x3d, 0x03, 0x01, 0x07 };
	CK_MECHANISM	     m = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL	     yes = CK_TRUE, no = CK_FALSE;
	CK_OBJECT_HANDLE     pub;
	CK_ATTRIBUTE pt[] = { { CKA_EC_PARAMS, (void *)p256, sizeof(p256) },
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_VERIFY, &yes, sizeof(yes) } };
	CK_ATTRIBUTE kt[] = { { CKA_TOKEN, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) } };

	EQ_INT(f->C_GenerateKeyPair(s, &m, pt, 3, kt, 3, &pub, &priv), CKR_OK);
}

/* Loads the module through p11-kit, logs in, opens the sessions. */
static void
open_token(void)
{
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID	     slots[8];
	CK_ULONG	     n = 8;
	size_t		     i;

	f = p11_kit_module_load(getenv("FAULTP11"), P11_KIT_MODULE_UNMANAGED);
	TRUE(f != NULL);
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	EQ_INT(f->C_Initialize(&args), CKR_OK);
	EQ_INT(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	TRUE(n >= 1);
	for (i = 0; i < NSESSIONS; i++) {
		EQ_INT(f->C_OpenSession(slots[0],
			   CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
			   &sessions[i]),
		    CKR_OK);
	}
	EQ_INT(f->C_Login(sessions[0], CKU_USER, (CK_UTF8CHAR *)TESTTOKEN_PIN,
		   strlen(TESTTOKEN_PIN)),
	    CKR_OK);
	make_key(sessions[0]);
}

static void
close_token(void)
{
	EQ_INT(f->C_Finalize(NULL), CKR_OK);
	p11_kit_module_release(f);
	f = NULL;
}

/* One ECDSA signature on session i: C_Sign's rv. */
static CK_RV
sign(size_t i)
{
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	CK_BYTE	     digest[32] = { 1, 2, 3 }, sig[128];
	CK_ULONG     len = sizeof(sig);

	EQ_INT(f->C_SignInit(sessions[i], &m, priv), CKR_OK);
	return f->C_Sign(sessions[i], digest, sizeof(digest), sig, &len);
}

/* Lines of file holding word. */
static int
file_lines(const char *path, const char *word)
{
	char  line[512];
	FILE *fp;
	int   n = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		return 0;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		n += strstr(line, word) != NULL;
	}
	fclose(fp);
	return n;
}

/* Lines of the module's log holding word. */
static int
log_lines(const char *word)
{
	return file_lines(logpath, word);
}

static void
test_plain(void)
{
	write_ctl("# no rules\n");
	EQ_INT(sign(0), CKR_OK);
	EQ_INT(sign(1), CKR_OK);
}

static void
test_fail_count(void)
{
	char text[PATH_MAX + 64];

	snprintf(text, sizeof(text),
	    "log %s\nfail C_Sign CKR_DEVICE_ERROR count 2\n", logpath);
	write_ctl(text);
	EQ_INT(sign(0), CKR_DEVICE_ERROR);
	EQ_INT(sign(0), CKR_DEVICE_ERROR); /* the session is still usable */
	EQ_INT(sign(0), CKR_OK);
	EQ_INT(sign(0), CKR_OK);
	EQ_INT(log_lines("fail C_Sign CKR_DEVICE_ERROR"), 2);
	/* a rewrite with the same text resets the counters */
	snprintf(text, sizeof(text),
	    "log %s\nfail C_Sign CKR_DEVICE_ERROR count 2\n\n", logpath);
	write_ctl(text);
	EQ_INT(sign(0), CKR_DEVICE_ERROR);
	EQ_INT(log_lines("fail C_Sign"), 3);
}

static void
test_fail_after(void)
{
	write_ctl("fail C_Sign 0x30 after 3\nfail * CKR_TOKEN_NOT_PRESENT "
		  "after 100\n");
	EQ_INT(sign(0), CKR_OK);
	EQ_INT(sign(0), CKR_OK);
	EQ_INT(sign(0), CKR_OK);
	EQ_INT(sign(0), CKR_DEVICE_ERROR);
	EQ_INT(sign(0), CKR_DEVICE_ERROR); /* until the line goes */
	write_ctl("fail C_Sign CKR_SESSION_HANDLE_INVALID prob 0\n");
	EQ_INT(sign(0), CKR_OK);
	write_ctl("fail C_SignInit CKR_USER_NOT_LOGGED_IN\n");
	CK_MECHANISM m = { CKM_ECDSA, NULL, 0 };
	EQ_INT(f->C_SignInit(sessions[0], &m, priv), CKR_USER_NOT_LOGGED_IN);
	write_ctl("");
	EQ_INT(sign(0), CKR_OK);
}

static void
test_malformed(void)
{
	char errpath[PATH_MAX];
	int  saved, fd;

	/* stderr to a file for a while: each bad line reported once */
	testtoken_path(errpath, sizeof(errpath), "stderr");
	fflush(stderr);
	TRUE((saved = dup(STDERR_FILENO)) != -1);
	TRUE((fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != -1);
	TRUE(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	close(fd);
	write_ctl(
	    "fail C_Sign CKR_NO_SUCH_THING\nfial C_Sign CKR_DEVICE_ERROR\n"
	    "fail C_Nope CKR_DEVICE_ERROR\ndelay C_Sign fast\n"
	    "limit C_Sign 0\nfail C_Sign CKR_DEVICE_ERROR after x\n"
	    "fail C_Sign CKR_DEVICE_MEMORY count 1 # the only rule\n");
	EQ_INT(sign(0), CKR_DEVICE_MEMORY);
	EQ_INT(sign(0), CKR_OK);
	EQ_INT(sign(0), CKR_OK);
	fflush(stderr);
	TRUE(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
	close(saved);
	EQ_INT(file_lines(errpath, "faultp11: control line "), 6);
	EQ_INT(
	    file_lines(errpath, "faultp11: control line 2: unknown keyword"),
	    1);
	EQ_INT(file_lines(errpath, "control line 7"), 0);
}

/* prob 0.5 over 400 calls, with a seed: about half fail. */
static void
test_prob(void)
{
	CK_SESSION_INFO info;
	int		i, failed = 0;

	write_ctl(
	    "seed 7\nfail C_GetSessionInfo CKR_DEVICE_REMOVED prob 0.5\n");
	for (i = 0; i < 400; i++) {
		failed += f->C_GetSessionInfo(sessions[0], &info) ==
		    CKR_DEVICE_REMOVED;
	}
	fprintf(stderr, "prob 0.5: %d of 400 failed\n", failed);
	TRUE(failed > 120 && failed < 280);
	write_ctl("");
}

static void
test_delay(void)
{
	long long t0;

	write_ctl("delay C_Sign 20ms\n");
	t0 = now_us();
	EQ_INT(sign(0), CKR_OK);
	TRUE(now_us() - t0 >= 20000);
	write_ctl("delay C_Sign 200ms after 1\n");
	t0 = now_us();
	EQ_INT(sign(0), CKR_OK); /* the first passes at once */
	TRUE(now_us() - t0 < 200000);
	t0 = now_us();
	EQ_INT(sign(0), CKR_OK);
	TRUE(now_us() - t0 >= 200000);
	write_ctl("");
}

static void *
sign_thread(void *arg)
{
	return (void *)(uintptr_t)sign((size_t)(uintptr_t)arg);
}

/* 4 threads, 50 ms each: the total tells how many ran at once. */
static long long
four_signs(void)
{
	pthread_t tid[NSESSIONS];
	void	 *rv;
	long long t0 = now_us();
	size_t	  i;

	for (i = 0; i < NSESSIONS; i++) {
		TRUE(pthread_create(&tid[i], NULL, sign_thread,
			 (void *)(uintptr_t)i) == 0);
	}
	for (i = 0; i < NSESSIONS; i++) {
		TRUE(pthread_join(tid[i], &rv) == 0);
		EQ_INT((uintptr_t)rv, CKR_OK);
	}
	return now_us() - t0;
}

static void
test_limit(void)
{
	char	  text[PATH_MAX + 64];
	long long us;

	snprintf(text, sizeof(text), "log %s\ndelay C_Sign 50ms\n", logpath);
	write_ctl(text);
	us = four_signs();
	fprintf(stderr, "no limit: %lld us\n", us);
	TRUE(us >= 50000 && us < 150000); /* not 4 x 50 ms */
	snprintf(text, sizeof(text),
	    "log %s\ndelay C_Sign 50ms\nlimit C_Sign 1\n", logpath);
	write_ctl(text);
	us = four_signs();
	fprintf(stderr, "limit 1: %lld us\n", us);
	TRUE(us >= 200000);
	TRUE(log_lines("limit C_Sign") >= 1);
	write_ctl("delay * 25ms\nlimit * 2\n");
	us = four_signs(); /* 8 calls (SignInit, Sign), 2 at once */
	fprintf(stderr, "limit * 2: %lld us\n", us);
	TRUE(us >= 100000);
	write_ctl("");
}

static atomic_int fifo_next;
static int	  fifo_order[NSESSIONS];

static void *
fifo_thread(void *arg)
{
	size_t i = (size_t)(uintptr_t)arg;
	CK_RV  rv = sign(i);

	fifo_order[atomic_fetch_add(&fifo_next, 1)] = (int)i;
	return (void *)(uintptr_t)rv;
}

/* Calls waiting for a limit get in in the order they came: each thread
 * starts once the one before it has logged its delay (it holds the slot
 * or waits in the line), and they finish in that order. */
static void
test_limit_fifo(void)
{
	pthread_t tid[NSESSIONS];
	char	  text[PATH_MAX + 64];
	void	 *rv;
	size_t	  i;
	int	  k;

	unlink(logpath);
	snprintf(text, sizeof(text),
	    "log %s\ndelay C_Sign 60ms\nlimit C_Sign 1\n", logpath);
	write_ctl(text);
	atomic_store(&fifo_next, 0);
	for (i = 0; i < NSESSIONS; i++) {
		TRUE(pthread_create(&tid[i], NULL, fifo_thread,
			 (void *)(uintptr_t)i) == 0);
		for (k = 0; k < 5000 && log_lines("delay C_Sign") <= (int)i;
		     k++) {
			usleep(1000);
		}
		EQ_INT(log_lines("delay C_Sign"), i + 1);
	}
	for (i = 0; i < NSESSIONS; i++) {
		TRUE(pthread_join(tid[i], &rv) == 0);
		EQ_INT((uintptr_t)rv, CKR_OK);
	}
	EQ_INT(log_lines("limit C_Sign"), NSESSIONS - 1);
	for (i = 0; i < NSESSIONS; i++) {
		EQ_INT(fifo_order[i], i);
	}
	write_ctl("");
}

/* A child that opens the token and creates session objects until killed:
 * the number it made, or -signal. */
static int
child_creates(const char *rules)
{
	CK_OBJECT_CLASS	 cls = CKO_DATA;
	CK_BBOOL	 no = CK_FALSE;
	CK_ATTRIBUTE	 t[] = { { CKA_CLASS, &cls, sizeof(cls) },
		    { CKA_TOKEN, &no, sizeof(no) } };
	CK_OBJECT_HANDLE o;
	pid_t		 pid;
	int		 st, i;

	write_ctl(rules);
	TRUE((pid = fork()) != -1);
	if (pid == 0) {
		open_token();
		for (i = 0; i < 10; i++) {
			if (f->C_CreateObject(sessions[0], t, 2, &o) !=
			    CKR_OK) {
				_exit(100);
			}
		}
		close_token();
		_exit(i);
	}
	TRUE(waitpid(pid, &st, 0) == pid);
	return WIFSIGNALED(st) ? -WTERMSIG(st) : WEXITSTATUS(st);
}

static void
test_kill(void)
{
	char text[PATH_MAX + 64];

	close_token(); /* the child opens its own */
	snprintf(text, sizeof(text), "log %s\nkill C_CreateObject after 2\n",
	    logpath);
	EQ_INT(child_creates(text), -SIGKILL);
	EQ_INT(log_lines("kill C_CreateObject call 3 pid"), 1);
	EQ_INT(child_creates("kill C_CreateObject after 20\n"), 10);
	EQ_INT(child_creates(""), 10);
	write_ctl("");
	open_token();
}

/* The sessions are gone: session 0 no longer answers. */
static void
sessions_gone(void)
{
	CK_SESSION_INFO si;

	EQ_INT(
	    f->C_GetSessionInfo(sessions[0], &si), CKR_SESSION_HANDLE_INVALID);
	close_token(); /* and start again, as hsmkeyd's healer does */
	write_ctl("");
	open_token();
}

static void
test_drop(void)
{
	char text[PATH_MAX + 64];

	snprintf(text, sizeof(text), "log %s\ndrop C_Sign count 1\n", logpath);
	write_ctl(text);
	EQ_INT(sign(0), CKR_SESSION_HANDLE_INVALID);
	EQ_INT(log_lines("drop C_Sign call 1 pid"), 1);
	sessions_gone();
	EQ_INT(sign(1), CKR_OK);
}

static void
test_idle(void)
{
	char text[PATH_MAX + 64];

	snprintf(text, sizeof(text), "log %s\nidle 300ms\n", logpath);
	write_ctl(text);
	EQ_INT(sign(0), CKR_OK);
	usleep(100 * 1000);
	EQ_INT(sign(0), CKR_OK); /* not idle long enough */
	EQ_INT(log_lines("idle"), 0);
	usleep(500 * 1000);
	sessions_gone();
	EQ_INT(log_lines("idle C_GetSessionInfo call 1 pid"), 1);
	EQ_INT(sign(0), CKR_OK);
}

static void
setup(void)
{
	static const char *const labels[] = { "faultp11", NULL };

	testtoken_setup(labels);
	testtoken_path(ctl, sizeof(ctl), "faultp11.ctl");
	testtoken_path(logpath, sizeof(logpath), "faultp11.log");
	TRUE(setenv("FAULTP11_CONTROL", ctl, 1) == 0);
	TRUE(getenv("FAULTP11") != NULL);
	write_ctl("");
	open_token();
}

static void
test_all(void)
{
	setup();
	test_plain();
	test_fail_count();
	test_fail_after();
	test_malformed();
	test_prob();
	test_delay();
	test_limit();
	test_limit_fifo();
	test_drop();
	test_idle();
	test_kill();
	test_plain();
	close_token();
}

TEST_LIST = {
	{ "all", test_all },
	{ NULL, NULL },
};

TEST_MAIN
