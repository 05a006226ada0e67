#include <stdio.h>
#include <string.h>

#include "greeting.h"

static int failures = 0;

static void expect(const char *name, size_t size, const char *want, size_t want_needed) {
  char out[64];
  size_t needed = greeting(name, out, size);
  if (strcmp(out, want) != 0 || needed != want_needed) {
    printf("FAIL greeting(%s, %zu): got \"%s\" (%zu), want \"%s\" (%zu)\n", name ? name : "NULL", size, out,
           needed, want, want_needed);
    failures++;
  } else {
    printf("ok   greeting(%s, %zu) = \"%s\"\n", name ? name : "NULL", size, out);
  }
}

int main(void) {
  expect("raibid", 64, "hello, raibid!", 14);
  expect(NULL, 64, "hello, world!", 13);
  expect("", 64, "hello, world!", 13);
  expect("raibid", 8, "hello, ", 14); /* cut to fit, but says how much it needed */
  printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
