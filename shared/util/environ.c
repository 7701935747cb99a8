/*
 * environ.c - variables of an explicit environment array (see environ.h).
 */
#include <string.h>

#include "mailrobot/environ.h"

const char *mr_env_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);

    for (char *const *e = envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}
