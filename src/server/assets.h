/* assets.h: the web page's files, embedded into the binary at build time (cmake/embed.cmake). */
#ifndef VT_SERVER_ASSETS_H
#define VT_SERVER_ASSETS_H
#include <stddef.h>

typedef struct vt_asset {
    const char *path; /* "/index.html" */
    const char *mime;
    const unsigned char *data;
    size_t len;
} vt_asset;

/* Terminated by an entry with path == NULL. */
extern const vt_asset vt__assets[];

/* The asset served at `path` ("/" means "/index.html"), or NULL. */
const vt_asset *vt__asset_find(const char *path);
#endif
