/* test_labeler.c - unit tests for labeler.c (being written). */
#include "unit.h"

int main(void) {
        return 0;
}
