/* SPDX-License-Identifier: Apache-2.0 */
/* One line per event: "<time> <level> <message>" on stderr. */
#ifndef GAMMAD_LOG_H
#define GAMMAD_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level log_threshold;

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...)   log_msg(LOG_ERROR, __VA_ARGS__)
#define pr_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Parse "error|warn|info|debug"; returns -EINVAL for anything else. */
int log_level_parse(const char *name, enum log_level *level);

#endif
