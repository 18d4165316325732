/* assets.c: lookup of the embedded web files by URL path. */
#include "server/assets.h"
#include <string.h>

const vt_asset *vt__asset_find(const char *path) {
    if (!path || !*path || !strcmp(path, "/")) path = "/index.html";
    for (const vt_asset *a = vt__assets; a->path; a++)
        if (!strcmp(a->path, path)) return a;
    return NULL;
}
