/* capabilities.c - see capabilities.h. (being written) */
#include "capabilities.h"
