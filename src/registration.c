/* registration.c - placeholder */
