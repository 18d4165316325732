/* image_file.h: reading a catalog photo to serve it: only a regular file whose bytes are a photo. */
#ifndef VT_SERVER_IMAGE_FILE_H
#define VT_SERVER_IMAGE_FILE_H
#include "vitrine.h"

/* Reads the photo at `path` (as recorded in the store; a relative path is taken from the current
 * directory) into *out (malloc'd, *len bytes) and sets *mime to "image/jpeg", "image/png" or
 * "image/webp". The file is opened without following a symlink in its last component and without
 * blocking (a FIFO or a device is never waited on), and must be a regular file of at most
 * max_bytes whose first bytes are the magic of JPEG, PNG or WebP. Returns 0, VT_ENOENT (cannot be
 * opened, or is a symlink), VT_ENOTIMAGE (not a regular file, or not a photo), VT_ETOOBIG, VT_EIO or
 * VT_ENOMEM; the message names the path (for the server's log, not for clients). */
int vt__image_file_read(const char *path, size_t max_bytes, uint8_t **out, size_t *len, const char **mime);
#endif
