/* One HTTP header, shared by the server and the client: NUL-terminated name
 * and value, owned by whoever built the list. */
#ifndef O2C_NET_HTTP_HEADER_H
#define O2C_NET_HTTP_HEADER_H

struct http_header {
    const char *name;
    const char *value;
};

#endif
