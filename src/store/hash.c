/* hash.c: XXH64, the 64-bit content hash the store keeps for image files (fast, well specified). */
#include "core/internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian host (x86-64, arm64) */
}
static inline uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline uint64_t round1(uint64_t acc, uint64_t in) {
    acc += in * P2;
    acc = rotl(acc, 31);
    return acc * P1;
}
static inline uint64_t merge(uint64_t acc, uint64_t v) {
    acc ^= round1(0, v);
    return acc * P1 + P4;
}

/* Streaming state, so that files are hashed without reading them whole. */
typedef struct {
    uint64_t v[4], total;
    uint8_t buf[32];
    size_t nbuf;
    uint64_t seed;
} xxh64;

static void xxh_init(xxh64 *h, uint64_t seed) {
    memset(h, 0, sizeof *h);
    h->seed = seed;
    h->v[0] = seed + P1 + P2;
    h->v[1] = seed + P2;
    h->v[2] = seed;
    h->v[3] = seed - P1;
}

static void xxh_update(xxh64 *h, const uint8_t *p, size_t len) {
    h->total += len;
    if (h->nbuf + len < 32) {
        memcpy(h->buf + h->nbuf, p, len);
        h->nbuf += len;
        return;
    }
    if (h->nbuf) {
        size_t take = 32 - h->nbuf;
        memcpy(h->buf + h->nbuf, p, take);
        for (int i = 0; i < 4; i++) h->v[i] = round1(h->v[i], rd64(h->buf + 8 * i));
        p += take;
        len -= take;
        h->nbuf = 0;
    }
    while (len >= 32) {
        for (int i = 0; i < 4; i++) h->v[i] = round1(h->v[i], rd64(p + 8 * i));
        p += 32;
        len -= 32;
    }
    memcpy(h->buf, p, len);
    h->nbuf = len;
}

static uint64_t xxh_final(const xxh64 *h) {
    uint64_t acc;
    if (h->total >= 32) {
        acc = rotl(h->v[0], 1) + rotl(h->v[1], 7) + rotl(h->v[2], 12) + rotl(h->v[3], 18);
        for (int i = 0; i < 4; i++) acc = merge(acc, h->v[i]);
    } else {
        acc = h->seed + P5;
    }
    acc += h->total;
    const uint8_t *p = h->buf;
    size_t len = h->nbuf;
    while (len >= 8) {
        acc ^= round1(0, rd64(p));
        acc = rotl(acc, 27) * P1 + P4;
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        acc ^= (uint64_t)rd32(p) * P1;
        acc = rotl(acc, 23) * P2 + P3;
        p += 4;
        len -= 4;
    }
    while (len--) {
        acc ^= (*p++) * P5;
        acc = rotl(acc, 11) * P1;
    }
    acc ^= acc >> 33;
    acc *= P2;
    acc ^= acc >> 29;
    acc *= P3;
    acc ^= acc >> 32;
    return acc;
}

uint64_t vt_hash64(const void *buf, size_t len, uint64_t seed) {
    xxh64 h;
    xxh_init(&h, seed);
    if (len) xxh_update(&h, buf, len);
    return xxh_final(&h);
}

/* Hashes the file in 64 KiB reads. */
int vt_hash_file(const char *path, uint64_t *out) {
    if (!path || !out) return vt__err(VT_EINVAL, "vt_hash_file: NULL argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        return vt__err(e == ENOENT ? VT_ENOENT : VT_EIO, "%s: %s", path, strerror(e));
    }
    xxh64 h;
    xxh_init(&h, 0);
    uint8_t buf[65536];
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return vt__err(VT_EIO, "%s: %s", path, strerror(e));
        }
        if (r == 0) break;
        xxh_update(&h, buf, (size_t)r);
    }
    close(fd);
    *out = xxh_final(&h);
    return VT_OK;
}
