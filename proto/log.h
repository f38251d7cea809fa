/*
 * log.h: one line per event, to stderr or syslog.  Never pass a secret or a
 * PIN to these functions.  Thread-safe (one write(2)/syslog(3) per line).
 *
 *   log_warn("open %s", path)        appends strerror(errno)
 *   log_warnx("bad config")          no errno
 *   log_err_r(r, "sign %s", name)    appends hk_strerror(r)
 *   the _f variants prefix __func__.
 */
#ifndef HK_LOG_H
#define HK_LOG_H

enum hk_log_level {
	HK_LOG_ERROR = 0,
	HK_LOG_WARN,
	HK_LOG_INFO,
	HK_LOG_DEBUG,
};

/* Sets the program name, the destination (0: stderr, 1: syslog) and the
 * most verbose level written. */
void hk_log_init(const char *progname, int to_syslog, int level);
void hk_log_set_level(int level);

void hk_log(int level, const char *func, int with_errno, int r,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define log_warn(...)	    hk_log(HK_LOG_WARN, NULL, 1, 0, __VA_ARGS__)
#define log_warnx(...)	    hk_log(HK_LOG_WARN, NULL, 0, 0, __VA_ARGS__)
#define log_info(...)	    hk_log(HK_LOG_INFO, NULL, 0, 0, __VA_ARGS__)
#define log_debug(...)	    hk_log(HK_LOG_DEBUG, NULL, 0, 0, __VA_ARGS__)
#define log_error(...)	    hk_log(HK_LOG_ERROR, NULL, 0, 0, __VA_ARGS__)
#define log_err_r(r, ...)   hk_log(HK_LOG_ERROR, NULL, 0, (r), __VA_ARGS__)
#define log_warn_f(...)	    hk_log(HK_LOG_WARN, __func__, 1, 0, __VA_ARGS__)
#define log_warnx_f(...)    hk_log(HK_LOG_WARN, __func__, 0, 0, __VA_ARGS__)
#define log_err_r_f(r, ...) hk_log(HK_LOG_ERROR, __func__, 0, (r), __VA_ARGS__)
#define log_debug_f(...)    hk_log(HK_LOG_DEBUG, __func__, 0, 0, __VA_ARGS__)

#endif /* HK_LOG_H */
