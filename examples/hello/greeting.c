#include "greeting.h"

#include <stdio.h>

size_t greeting(const char *name, char *out, size_t size) {
  if (name == NULL || name[0] == '\0') name = "world";
  int needed = snprintf(out, size, "hello, %s!", name);
  return needed < 0 ? 0 : (size_t)needed;
}
