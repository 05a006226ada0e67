#include <stdio.h>

#include "greeting.h"

int main(int argc, char **argv) {
  char line[256];
  greeting(argc > 1 ? argv[1] : NULL, line, sizeof line);
  puts(line);
  return 0;
}
