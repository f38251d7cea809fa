/* cli_main.c: main() of the hsmkey command line (the work is in cli.c). */
#include "cli.h"

int
main(int argc, char **argv)
{
	return cli_run(argc, argv);
}
