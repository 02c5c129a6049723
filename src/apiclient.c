/* apiclient.c - see apiclient.h. (being written) */
#include "apiclient.h"
