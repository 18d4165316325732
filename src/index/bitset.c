/* bitset.c: vt_bitset, the set of admitted labels used to filter searches. */
#include "index_internal.h"

int vt_bitset_create(size_t nbits, vt_bitset **out) {
    *out = NULL;
    vt_bitset *b = calloc(1, sizeof *b);
    size_t words = (nbits + 63) / 64;
    if (b) b->w = calloc(words ? words : 1, sizeof *b->w);
    if (!b || !b->w) {
        free(b);
        return vt__err(VT_ENOMEM, "out of memory for a bitset of %zu bits", nbits);
    }
    b->nbits = nbits;
    *out = b;
    return VT_OK;
}

void vt_bitset_free(vt_bitset *b) {
    if (!b) return;
    free(b->w);
    free(b);
}

void vt_bitset_set(vt_bitset *b, size_t i) {
    if (i >= b->nbits) return;
    uint64_t m = 1ull << (i & 63);
    if (!(b->w[i >> 6] & m)) b->count++;
    b->w[i >> 6] |= m;
}

void vt_bitset_clear(vt_bitset *b, size_t i) {
    if (i >= b->nbits) return;
    uint64_t m = 1ull << (i & 63);
    if (b->w[i >> 6] & m) b->count--;
    b->w[i >> 6] &= ~m;
}

int vt_bitset_test(const vt_bitset *b, size_t i) { return i < b->nbits && ((b->w[i >> 6] >> (i & 63)) & 1); }

size_t vt_bitset_count(const vt_bitset *b) { return b->count; }
