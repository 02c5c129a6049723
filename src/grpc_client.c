/* grpc_client.c - placeholder */
