/* keyring_fixture.c: the unit tests' SoftHSM token (see
 * keyring_fixture.h). */
#include <sys/types.h>
#include <sys/wait.h>

#include <unistd.h>

#include "keyring_fixture.h"
#include "testtoken.h"
#include "testutil.h"

static struct token	    *fixtok;
static struct token_session *fixsess;

static void
fixture_open(void)
{
	static const char *const labels[] = { "hkunit", NULL };

	if (fixtok != NULL) {
		return;
	}
	testtoken_setup(labels);
	PASS(token_open(&fixtok, SOFTHSM_MODULE, NULL, "pkcs11:token=hkunit",
	    testtoken_pinfile()));
	PASS(token_session_open(fixtok, &fixsess));
}

struct token *
fixture_token(void)
{
	fixture_open();
	return fixtok;
}

struct token_session *
fixture_session(void)
{
	fixture_open();
	return fixsess;
}

void
fixture_objects(struct token_object **objsp, size_t *np)
{
	PASS(token_list_all(fixture_session(), "hsmkey", 100000, objsp, np));
}

long
fixture_dead_pid(void)
{
	pid_t pid;
	int   st;

	TRUE((pid = fork()) != -1);
	if (pid == 0) {
		_exit(0);
	}
	TRUE(waitpid(pid, &st, 0) == pid);
	return (long)pid;
}

void
fixture_close(void)
{
	token_session_close(fixsess);
	fixsess = NULL;
	token_close(fixtok);
	fixtok = NULL;
}
