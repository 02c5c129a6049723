/* labeler.c - see labeler.h. (being written) */
#include "labeler.h"
