/*
 * environ.h - looking up variables in an explicit environment array.
 *
 * Programs pass `environ` down instead of calling getenv(), so that the
 * code reading the environment can be tested with any array.
 */
#ifndef MAILROBOT_ENVIRON_H
#define MAILROBOT_ENVIRON_H

/* The value of name in envp ("NAME=value" strings, NULL-terminated; envp
 * may be NULL), or NULL if it is not set. */
const char *mr_env_get(char *const *envp, const char *name);

#endif
