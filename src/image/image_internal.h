/* image_internal.h: functions shared inside the image module (and its tests). */
#ifndef VT_IMAGE_INTERNAL_H
#define VT_IMAGE_INTERNAL_H
#include "vitrine.h"

/* EXIF orientation (1..8) from an APP1 payload starting "Exif\0\0"; 1 when absent/malformed. */
int vt__exif_orientation(const uint8_t *data, size_t len);
/* Rotates/mirrors img in place according to an EXIF orientation value. */
int vt__apply_orientation(vt_image *img, int orientation);

#endif
