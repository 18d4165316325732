/* image_file.c: reads a catalog photo for GET /images/{id}: a regular file, not reached through a
 * symlink, that starts like a JPEG, PNG or WebP; anything else the store names is refused. */
#include "server/image_file.h"
#include "core/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads up to n bytes at the file's current offset; returns the count read, or -1. */
static ssize_t read_full(int fd, uint8_t *p, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int vt__image_file_read(const char *path, size_t max_bytes, uint8_t **out, size_t *len, const char **mime) {
    *out = NULL;
    *len = 0;
    *mime = NULL;
    if (!path || !*path) return vt__err(VT_EINVAL, "no image path");
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return vt__err(VT_ENOENT, "%s: %s", path, e == ELOOP ? "a symbolic link (not followed)" : strerror(e));
    }
    struct stat sb;
    int rc = VT_OK;
    uint8_t *buf = NULL;
    ssize_t got = 0;
    if (fstat(fd, &sb) != 0) {
        rc = vt__err(VT_EIO, "%s: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        rc = vt__err(VT_ENOTIMAGE, "%s: not a regular file", path);
    } else if ((uint64_t)sb.st_size > max_bytes) {
        rc = vt__err(VT_ETOOBIG, "%s: %lld bytes, above the limit of %zu", path, (long long)sb.st_size, max_bytes);
    } else if (!(buf = malloc(sb.st_size > 12 ? (size_t)sb.st_size : 12))) {
        rc = vt__err(VT_ENOMEM, "out of memory for %s", path);
    } else {
        /* the magic first, so that a large file that is not a photo is not read */
        got = read_full(fd, buf, 12);
        if (got < 0) rc = vt__err(VT_EIO, "%s: %s", path, strerror(errno));
        else if (vt_image_sniff(buf, (size_t)got) == VT_FMT_UNKNOWN)
            rc = vt__err(VT_ENOTIMAGE, "%s: not a JPEG, PNG or WebP file", path);
        else if ((size_t)sb.st_size > (size_t)got) {
            ssize_t more = read_full(fd, buf + got, (size_t)sb.st_size - (size_t)got);
            if (more < 0) rc = vt__err(VT_EIO, "%s: %s", path, strerror(errno));
            else got += more; /* a file that shrank meanwhile: what is there */
        }
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    static const char *const types[] = {NULL, "image/jpeg", "image/png", "image/webp"};
    *mime = types[vt_image_sniff(buf, (size_t)got)];
    *out = buf;
    *len = (size_t)got;
    return VT_OK;
}
