/* fuzz_file.c: a fuzz input as a file (see fuzz_file.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_file.h"

static int  input_fd = -1;
static char input_path[64];

const char *
fuzz_file(const uint8_t *data, size_t size)
{
	size_t	off = 0;
	ssize_t n;

	if (input_fd < 0) {
		if ((input_fd = memfd_create("hk-fuzz-input", MFD_CLOEXEC)) <
		    0) {
			perror("memfd_create");
			abort();
		}
		snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d",
		    input_fd);
	}
	if (ftruncate(input_fd, 0) != 0) {
		perror("ftruncate");
		abort();
	}
	while (off < size) {
		n = pwrite(input_fd, data + off, size - off, (off_t)off);
		if (n <= 0) {
			perror("pwrite");
			abort();
		}
		off += (size_t)n;
	}
	return input_path;
}
