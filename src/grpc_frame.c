/* grpc_frame.c - placeholder */
