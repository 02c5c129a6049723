/* plugin.c - placeholder */
