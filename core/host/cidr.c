#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host/cidr.h"

/* Reads ADDRESS into BYTES; IPv4-mapped IPv6 (::ffff:a.b.c.d, what a
 * dual-stack socket reports) becomes plain IPv4.  The family, or 0. */
static int address_bytes(const char *address, unsigned char bytes[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (inet_pton(AF_INET, address, bytes) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, address, bytes) != 1)
        return 0;
    if (memcmp(bytes, mapped, sizeof mapped) == 0) {
        memmove(bytes, bytes + 12, 4);
        return AF_INET;
    }
    return AF_INET6;
}

static void clear_host_bits(unsigned char addr[16], int prefix, int bits)
{
    for (int i = 0; i < bits / 8; i++) {
        int keep = prefix - i * 8;
        addr[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
    }
}

int cidr_parse(const char *text, struct cidr *out)
{
    char host[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof host)
        return -1;
    memcpy(host, text, n);
    host[n] = '\0';
    memset(out, 0, sizeof *out);
    out->family = address_bytes(host, out->addr);
    if (!out->family)
        return -1;
    int bits = out->family == AF_INET ? 32 : 128;
    out->prefix = bits;
    if (slash) {
        char *end;
        long p = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || p < 0 || p > bits)
            return -1;
        out->prefix = (int)p;
    }
    clear_host_bits(out->addr, out->prefix, bits);
    return 0;
}

/* Copies the entry [START, END) without surrounding blanks into OUT. */
static void trimmed(const char *start, const char *end, char *out, size_t cap)
{
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    snprintf(out, cap, "%.*s", (int)(end - start), start);
}

int cidr_list_parse(const char *text, struct cidr *list, size_t cap, size_t *count, char *bad,
                    size_t bad_cap)
{
    *count = 0;
    for (const char *p = text; *p;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        char entry[128];
        trimmed(p, end, entry, sizeof entry);
        if (*count == cap || cidr_parse(entry, &list[*count]) != 0) {
            snprintf(bad, bad_cap, "%s", *count == cap ? "more than 32 entries" : entry);
            return -1;
        }
        (*count)++;
        p = comma ? comma + 1 : end;
    }
    return 0;
}

static int cidr_contains(const struct cidr *c, int family, const unsigned char bytes[16])
{
    if (c->family != family)
        return 0;
    unsigned char masked[16];
    memcpy(masked, bytes, sizeof masked);
    clear_host_bits(masked, c->prefix, family == AF_INET ? 32 : 128);
    return memcmp(masked, c->addr, family == AF_INET ? 4 : 16) == 0;
}

int cidr_list_match(const struct cidr *list, size_t count, const char *address)
{
    unsigned char bytes[16] = {0};
    int family = address ? address_bytes(address, bytes) : 0;
    for (size_t i = 0; family && i < count; i++)
        if (cidr_contains(&list[i], family, bytes))
            return 1;
    return 0;
}

int cidr_address_canonical(const char *address, char out[CIDR_ADDRESS_MAX])
{
    unsigned char bytes[16];
    int family = address_bytes(address, bytes);
    return family && inet_ntop(family, bytes, out, CIDR_ADDRESS_MAX) ? 0 : -1;
}
