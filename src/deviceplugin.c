/* deviceplugin.c - placeholder */
