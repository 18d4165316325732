/* image_internal.h: functions shared inside the image module (and its tests). */
#ifndef VT_IMAGE_INTERNAL_H
#define VT_IMAGE_INTERNAL_H
#include "vitrine.h"

/* EXIF orientation (1..8) from an APP1 payload starting "Exif\0\0"; 1 when absent/malformed. */
int vt__exif_orientation(const uint8_t *data, size_t len);
/* Rotates/mirrors img in place according to an EXIF orientation value. */
int vt__apply_orientation(vt_image *img, int orientation);
/* Reads only the header of an encoded JPEG, PNG or WebP image and refuses it with VT_ETOOBIG
 * (message naming the limit) when it declares more than max_pixels pixels (0: the decoder's
 * default). Anything it cannot parse passes (VT_OK): the decoder then says what is wrong.
 * Allocates no pixel buffer: for checking uploads before they are decoded. */
int vt__image_check_pixels(const void *buf, size_t len, const char *name, uint64_t max_pixels);

#endif
