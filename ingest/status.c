/*
 * status.c - the ingest's one status line and exit (see status.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "status.h"

void ingest_finish(int status, const char *code, const char *fmt, ...)
{
    char text[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (code != NULL)
        fprintf(stderr, "%s %s\n", code, text);
    else
        fprintf(stderr, "%s\n", text);
    fflush(stderr);
    _exit(status);
}
