/* discovery.c - placeholder */
