/*
 * fuzz_file.h: a fuzz input as a file, for the parsers whose entry point
 * reads a path (config_load(), hk_credentials_load()): one anonymous
 * memfd per process, rewritten for each input and named /proc/self/fd/N,
 * so the real entry point runs with no file on disk.  Fuzz code only; not
 * thread-safe (libFuzzer runs one input at a time).
 */
#ifndef HK_FUZZ_FILE_H
#define HK_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* The path of a file that holds exactly data; aborts if it cannot be
 * made.  Caller does not free; the next call rewrites it. */
const char *fuzz_file(const uint8_t *data, size_t size);

#endif /* HK_FUZZ_FILE_H */
