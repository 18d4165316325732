/* fileio.c: whole-file reads and crash-safe (temp file + fsync + rename) writes. */
#include "internal.h"
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *vt__basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Opens a regular file for reading: *fd and its size, or an error naming the file. The open
 * never blocks (O_NONBLOCK: a FIFO without a writer, a device), and anything but a regular file
 * is refused after fstat; with VT__READ_NOFOLLOW a symbolic link as the last component is
 * refused too (O_NOFOLLOW). */
static int open_regular(const char *path, int flags, int *fd, size_t *len) {
    int oflags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (flags & VT__READ_NOFOLLOW ? O_NOFOLLOW : 0);
    do *fd = open(path, oflags);
    while (*fd < 0 && errno == EINTR);
    if (*fd < 0) {
        int e = errno;
        if (e == ELOOP && (flags & VT__READ_NOFOLLOW))
            return vt__err(VT_EIO, "%s: is a symbolic link, refused", path);
        return vt__err(e == ENOENT ? VT_ENOENT : VT_EIO, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return vt__err(VT_EIO, "%s: not a regular file", path);
    }
    *len = (size_t)st.st_size;
    return VT_OK;
}

int vt__map_file(const char *path, void **p, size_t *len, int *mapped) {
    *p = NULL;
    *len = 0;
    *mapped = 0;
    int fd, rc = open_regular(path, 0, &fd, len);
    if (rc || *len == 0) {
        if (!rc) close(fd);
        return rc;
    }
    void *m = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m != MAP_FAILED) {
        *p = m;
        *mapped = 1;
        return VT_OK;
    }
    uint8_t *b; /* a file system without mmap: read it instead */
    rc = vt__read_file_ex(path, 0, 0, &b, len);
    *p = b;
    return rc;
}

void vt__unmap_file(void *p, size_t len, int mapped) {
    if (mapped)
        munmap(p, len);
    else
        free(p);
}

void vt__path_stem(const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", vt__basename(path));
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
}

int vt__read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len) {
    return vt__read_file_ex(path, max_bytes, 0, out, out_len);
}

int vt__read_file_ex(const char *path, size_t max_bytes, int flags, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    int fd;
    size_t len;
    int rc = open_regular(path, flags, &fd, &len);
    if (rc) return rc;
    if (max_bytes && len > max_bytes) {
        close(fd);
        return vt__err(VT_ETOOBIG, "%s: file is %zu bytes, above the limit of %zu", path, len, max_bytes);
    }
    uint8_t *buf = malloc(len + 1);
    if (!buf) {
        close(fd);
        return vt__err(VT_ENOMEM, "%s: out of memory reading %zu bytes", path, len);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != len) {
        free(buf);
        return vt__err(VT_EIO, "%s: short read (%zu of %zu bytes)", path, got, len);
    }
    buf[len] = 0;
    *out = buf;
    *out_len = len;
    return VT_OK;
}

int vt__write_file_atomic(const char *path, const void *buf, size_t len) {
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 32);
    if (!tmp) return vt__err(VT_ENOMEM, "out of memory");
    snprintf(tmp, pl + 32, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return vt__err(VT_EIO, "%s: cannot create: %s", path, strerror(e));
    }
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    int ok = done == len && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return vt__err(VT_EIO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return VT_OK;
}
