/*
 * status.h - how the ingest programs end: one status line for Postfix and
 * a sysexits code (SPEC §3).
 */
#ifndef INGEST_STATUS_H
#define INGEST_STATUS_H

/*
 * Prints "<code> <text>" (or just the text when code is NULL, for text that
 * already starts with its code) as the one line Postfix will log and put
 * in notifications, then exits with status. Postfix reads a leading
 * 4.X.X / 5.X.X as the delivery status, so code must fit status.
 */
__attribute__((noreturn, format(printf, 3, 4)))
void ingest_finish(int status, const char *code, const char *fmt, ...);

#endif
