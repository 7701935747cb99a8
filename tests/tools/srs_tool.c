/*
 * srs_tool.c - srs.h from the command line, for the oracle test against
 * postsrsd (tests/integration/test_srs_oracle.py); not installed.
 *
 *   srs_tool SECRET SRS_DOMAIN < REQUESTS
 *
 * One request a line, one answer a line ("ok ADDRESS" or "error MESSAGE"):
 *   forward NOW SENDER              mr_srs_forward (SENDER may be empty)
 *   reverse NOW MAX_AGE ADDRESS     mr_srs_reverse
 * NOW is unix seconds. Exit status 0; 2 on bad usage or a bad request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/srs.h"

/* The next space-separated word of *line as a number. */
static int number(char **line, long long *value)
{
    char *end;

    *value = strtoll(*line, &end, 10);
    if (end == *line || (*end != ' ' && *end != '\0'))
        return -1;
    *line = *end == ' ' ? end + 1 : end;
    return 0;
}

int main(int argc, char **argv)
{
    char line[4096], out[MR_SRS_ADDRESS_MAX + 1];
    long long now, max_age;
    mr_err err;

    if (argc != 3) {
        fprintf(stderr, "usage: srs_tool SECRET SRS_DOMAIN < REQUESTS\n");
        return 2;
    }
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *p = line;
        int rc;

        line[strcspn(line, "\n")] = '\0';
        if (strncmp(p, "forward ", 8) == 0) {
            p += 8;
            if (number(&p, &now) < 0)
                return 2;
            rc = mr_srs_forward(argv[1], argv[2], p, now, out, sizeof out, &err);
        } else if (strncmp(p, "reverse ", 8) == 0) {
            p += 8;
            if (number(&p, &now) < 0 || number(&p, &max_age) < 0)
                return 2;
            rc = mr_srs_reverse(argv[1], p, now, (int)max_age, out, sizeof out, &err);
        } else {
            fprintf(stderr, "srs_tool: bad request: %s\n", line);
            return 2;
        }
        printf(rc == 0 ? "ok %s\n" : "error %s\n", rc == 0 ? out : err.msg);
        fflush(stdout);
    }
    return 0;
}
