/* test_apiclient.c - unit tests for apiclient.c (being written). */
#include "unit.h"

int main(void) {
        return 0;
}
