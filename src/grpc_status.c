/* grpc_status.c - placeholder */
