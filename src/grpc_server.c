/* grpc_server.c - placeholder */
