#ifndef GREETING_H
#define GREETING_H

#include <stddef.h>

/* Writes "hello, <name>!" into out (at most size bytes, NUL-terminated); returns the length it needed. */
size_t greeting(const char *name, char *out, size_t size);

#endif
