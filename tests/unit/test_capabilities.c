/* test_capabilities.c - unit tests for capabilities.c (being written). */
#include "unit.h"

int main(void) {
        return 0;
}
