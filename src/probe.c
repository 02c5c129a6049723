/* probe.c - placeholder */
