/* Address ranges ("10.0.0.0/8", "::1/128", "127.0.0.1"), parsed once with
 * inet_pton, and the check whether a client address lies in one of them:
 * the trusted_proxies setting, whose X-Forwarded-* headers are believed. */
#ifndef O2C_HOST_CIDR_H
#define O2C_HOST_CIDR_H
#include <stddef.h>

#define CIDR_LIST_MAX 32
#define CIDR_ADDRESS_MAX 46 /* INET6_ADDRSTRLEN */

struct cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network order, host bits cleared */
    int prefix;             /* bits that must match */
};

/* Parses one range; without "/n" the whole address must match.  0 or -1. */
int cidr_parse(const char *text, struct cidr *out);

/* Parses a comma-separated list into LIST (up to CAP entries), *COUNT set.
 * On a bad entry returns -1 with that entry copied into BAD. */
int cidr_list_parse(const char *text, struct cidr *list, size_t cap, size_t *count, char *bad,
                    size_t bad_cap);

/* Whether ADDRESS (text, IPv4, IPv6 or IPv4-mapped IPv6) is in one of LIST. */
int cidr_list_match(const struct cidr *list, size_t count, const char *address);

/* Writes ADDRESS in its canonical text form into OUT; -1 if it is not an
 * IP address (a port, a name, garbage). */
int cidr_address_canonical(const char *address, char out[CIDR_ADDRESS_MAX]);

#endif
