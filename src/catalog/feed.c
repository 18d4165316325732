/* feed.c: streaming catalog feed reader: CSV with a header (libcsv) or JSON Lines (jansson). */
#include "core/internal.h"
#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define CHUNK 65536
#define CSV_OPTS (CSV_STRICT | CSV_STRICT_FINI) /* RFC 4180 quoting; an unclosed quote is an error */

/* Why a parsed record is bad before its fields are even looked at. */
enum { REC_OK = 0, REC_TOOLONG, REC_SYNTAX, REC_UNCLOSED };

/* One CSV record as parsed, waiting to be turned into a row. */
typedef struct rec {
    long line, last_line; /* first line; last line it covers when bad */
    int nf;
    char **f;
    size_t *len;
    int bad, has_nul; /* bad: REC_* */
} rec;

struct vt_feed {
    char *name, *dir, *images_dir;
    vt_feed_format fmt;
    size_t max_row;
    const volatile sig_atomic_t *cancel;
    /* input */
    FILE *fp;
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    uint8_t *buf;
    size_t blen, bpos;
    int eof, fatal, ended_nl; /* ended_nl: the last byte consumed was a newline */
    long line; /* 1-based line of the next byte to consume */
    /* CSV */
    struct csv_parser csv;
    int csv_ready;
    rec cur;
    int fcap;
    int in_record;
    size_t rec_bytes;
    int skipping; /* dropping input up to the end of an over-long line */
    rec *q;
    size_t qhead, qlen, qcap;
    char **cols;
    int ncols, id_col, image_col;
    /* JSONL */
    char *lbuf;
    size_t llen, lcap;
    /* output of the last row */
    rec out;
    char *o_id, *o_attrs, *o_image;
    char reason[600], image_error[600];
    vt__idmap *seen; /* ids seen so far -> their line, to report duplicates */
    long rows, errors, parse_errors;
};

/* ---- input */

/* Refills f->buf when it is used up; returns 0 at the end of input, 1 when bytes are available. */
static int fill(vt_feed *f) {
    if (f->bpos < f->blen) return 1;
    if (f->eof) return 0;
    f->bpos = f->blen = 0;
    if (f->fp) {
        size_t r;
        for (;;) { /* a signal interrupts a blocking read (a pipe): retry unless cancelled */
            errno = 0;
            r = fread(f->buf, 1, CHUNK, f->fp);
            if (r || !ferror(f->fp) || errno != EINTR) break;
            clearerr(f->fp);
            if (f->cancel && *f->cancel) {
                f->fatal = vt__err(VT_ECANCELED, "%s: reading interrupted", f->name);
                return 0;
            }
        }
        if (r == 0) {
            if (ferror(f->fp)) {
                f->fatal = vt__err(VT_EIO, "%s: read error: %s", f->name, strerror(errno));
            }
            f->eof = 1;
            return 0;
        }
        f->blen = r;
    } else {
        size_t r = VT_MIN((size_t)CHUNK, f->mem_len - f->mem_pos);
        if (r == 0) {
            f->eof = 1;
            return 0;
        }
        memcpy(f->buf, f->mem + f->mem_pos, r);
        f->mem_pos += r;
        f->blen = r;
    }
    return 1;
}

/* ---- CSV */

static void rec_free(rec *r) {
    for (int i = 0; i < r->nf; i++) free(r->f[i]);
    free(r->f);
    free(r->len);
    memset(r, 0, sizeof *r);
}

/* libcsv field callback: appends the field to the record being built. */
static void on_field(void *s, size_t len, void *user) {
    vt_feed *f = user;
    rec *r = &f->cur;
    if (!f->in_record) { /* a record that starts after a lone CR inside a line */
        f->in_record = 1;
        r->line = f->line;
    }
    if (r->bad) return;
    if (r->nf == f->fcap) {
        int nc = f->fcap ? f->fcap * 2 : 16;
        char **nf = realloc(r->f, (size_t)nc * sizeof *nf);
        if (nf) r->f = nf;
        size_t *nl = realloc(r->len, (size_t)nc * sizeof *nl);
        if (nl) r->len = nl;
        if (!nf || !nl) {
            r->bad = REC_TOOLONG; /* reported as an over-long row */
            return;
        }
        f->fcap = nc;
    }
    char *c = malloc(len + 1);
    if (!c) {
        r->bad = REC_TOOLONG;
        return;
    }
    if (len) memcpy(c, s, len);
    c[len] = 0;
    if (memchr(c, 0, len)) r->has_nul = 1;
    r->f[r->nf] = c;
    r->len[r->nf] = len;
    r->nf++;
}

static int queue_push(vt_feed *f, rec *r) {
    if (f->qhead + f->qlen == f->qcap) {
        if (f->qhead) {
            memmove(f->q, f->q + f->qhead, f->qlen * sizeof *f->q);
            f->qhead = 0;
        } else {
            size_t nc = f->qcap ? f->qcap * 2 : 8;
            rec *nq = realloc(f->q, nc * sizeof *nq);
            if (!nq) return VT_ENOMEM;
            f->q = nq;
            f->qcap = nc;
        }
    }
    f->q[f->qhead + f->qlen++] = *r;
    return 0;
}

/* Moves the record being built to the queue. */
static void end_record(vt_feed *f) {
    rec r = f->cur;
    memset(&f->cur, 0, sizeof f->cur);
    f->fcap = 0;
    f->in_record = 0;
    f->rec_bytes = 0;
    if (queue_push(f, &r)) {
        rec_free(&r);
        f->fatal = vt__err(VT_ENOMEM, "%s: out of memory", f->name);
    }
}

/* libcsv record callback. */
static void on_record(int c, void *user) {
    (void)c;
    end_record(user);
}

static int is_blank(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n') return 0;
    return 1;
}

/* Queues the record being built as bad (REC_*) covering its first line to `last`; drops the
 * rest of the current line (when the piece read had no newline, up to the next one) and
 * restarts the parser there. */
static void drop_record(vt_feed *f, int why, long last, int piece_had_nl) {
    csv_free(&f->csv);
    f->csv_ready = 0;
    long line = f->in_record ? f->cur.line : f->line;
    rec_free(&f->cur);
    f->fcap = 0;
    f->cur.line = line;
    f->cur.last_line = last;
    f->cur.bad = why;
    end_record(f);
    if (piece_had_nl) {
        f->line++;
        csv_init(&f->csv, CSV_OPTS);
        f->csv_ready = 1;
    } else {
        f->skipping = 1;
    }
}

/* Feeds input to libcsv piece by piece (at most one line per piece), tracking the line where each
 * record starts, until a record is queued or the input ends. Strict parsing: malformed quoting
 * makes the record bad and parsing resumes on the next line; a quoted field still open at the
 * end of the input makes a bad record of everything from its row on. */
static void csv_pump(vt_feed *f) {
    while (f->qlen == 0 && !f->fatal) {
        if (!fill(f)) {
            if (f->csv_ready) {
                int unclosed = !f->skipping && csv_fini(&f->csv, on_field, on_record, f) != 0;
                csv_free(&f->csv);
                f->csv_ready = 0;
                if (unclosed) {
                    f->cur.bad = REC_UNCLOSED;
                    f->cur.last_line = f->line - f->ended_nl;
                    if (!f->in_record) f->cur.line = f->cur.last_line;
                    f->in_record = 1;
                }
                if (f->in_record || f->cur.nf) end_record(f);
            }
            return;
        }
        const uint8_t *p = f->buf + f->bpos;
        size_t avail = f->blen - f->bpos;
        const uint8_t *nl = memchr(p, '\n', avail);
        size_t n = nl ? (size_t)(nl - p) + 1 : avail;
        f->bpos += n;
        f->ended_nl = nl != NULL;
        if (f->skipping) {
            if (nl) {
                f->skipping = 0;
                f->line++;
                csv_init(&f->csv, CSV_OPTS);
                f->csv_ready = 1;
            }
            continue;
        }
        if (!f->in_record && !is_blank(p, n)) {
            f->in_record = 1;
            f->cur.line = f->line;
            f->rec_bytes = 0;
        }
        if (f->in_record && f->rec_bytes + n > f->max_row) { /* too long: report it, skip the line */
            drop_record(f, REC_TOOLONG, f->line, nl != NULL);
            continue;
        }
        if (f->in_record) f->rec_bytes += n;
        if (csv_parse(&f->csv, p, n, on_field, on_record, f) != n) {
            if (csv_error(&f->csv) != CSV_EPARSE) {
                f->fatal = vt__err(VT_ENOMEM, "%s: CSV parser: %s", f->name, csv_strerror(csv_error(&f->csv)));
                return;
            }
            drop_record(f, REC_SYNTAX, f->line, nl != NULL);
            continue;
        }
        if (nl) f->line++;
    }
}

/* Pops the next parsed record into f->out; 0 at the end. */
static int csv_pop(vt_feed *f) {
    rec_free(&f->out);
    csv_pump(f);
    if (!f->qlen) return 0;
    f->out = f->q[f->qhead++];
    f->qlen--;
    if (!f->qlen) f->qhead = 0;
    return 1;
}

static int find_col(vt_feed *f, const char *const *names) {
    for (const char *const *n = names; *n; n++)
        for (int i = 0; i < f->ncols; i++)
            if (!strcasecmp(f->cols[i], *n)) return i;
    return -1;
}

/* Reads the header record: column names, the id column and an optional image column. */
static int csv_header(vt_feed *f) {
    if (!csv_pop(f)) return f->fatal ? f->fatal : vt__err(VT_EEMPTY, "%s: empty feed (no header line)", f->name);
    rec *h = &f->out;
    if (h->bad == REC_TOOLONG) return vt__err(VT_ETOOBIG, "%s: the header line is too long", f->name);
    if (h->bad) return vt__err(VT_ECORRUPT, "%s: line %ld: the header has malformed or unclosed quoting", f->name, h->line);
    f->ncols = h->nf;
    f->cols = calloc((size_t)h->nf, sizeof *f->cols);
    if (!f->cols) return vt__err(VT_ENOMEM, "out of memory");
    for (int i = 0; i < h->nf; i++) {
        char *c = h->f[i];
        if (i == 0 && !strncmp(c, "\xEF\xBB\xBF", 3)) memmove(c, c + 3, strlen(c + 3) + 1); /* UTF-8 BOM */
        if (!*c) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, "column%d", i + 1);
            f->cols[i] = strdup(tmp);
        } else {
            f->cols[i] = strdup(c);
        }
        if (!f->cols[i]) return vt__err(VT_ENOMEM, "out of memory");
        for (int j = 0; j < i; j++)
            if (!strcmp(f->cols[j], f->cols[i]))
                return vt__err(VT_ECORRUPT, "%s: line %ld: column '%.80s' appears twice in the header", f->name,
                               h->line, f->cols[i]);
    }
    static const char *const idn[] = {"id", "item_id", "product_id", "sku", NULL};
    static const char *const imn[] = {"image", "image_path", "image_file", "imagepath", "path", "filename", "file", NULL};
    f->id_col = find_col(f, idn);
    f->image_col = find_col(f, imn);
    if (f->id_col < 0)
        return vt__err(VT_ECORRUPT, "%s: line %ld: the header has no id column (id, item_id, product_id or sku)",
                       f->name, h->line);
    return VT_OK;
}

/* ---- rows */

static int set_error(vt_feed *f, vt_feed_row *row, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int set_error(vt_feed *f, vt_feed_row *row, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->reason, sizeof f->reason, fmt, ap);
    va_end(ap);
    row->error = code;
    row->reason = f->reason;
    f->errors++;
    return 1;
}

/* Resolves the image of a good row: an explicit path (relative to the images folder, else to
 * the feed's folder), or <images_dir>/<id>.<ext> when that file exists; either way confined to
 * that folder (vt_catalog_image_path). A missing file leaves no image; a refused one leaves no
 * image and the reason in f->image_error. Fails only for lack of memory. */
static int resolve_image(vt_feed *f, const char *id, const char *explicit_path, const char **why) {
    free(f->o_image);
    f->o_image = NULL;
    *why = NULL;
    char path[PATH_MAX];
    int rc;
    if (explicit_path && *explicit_path)
        rc = vt_catalog_image_path(f->images_dir ? f->images_dir : f->dir ? f->dir : ".", explicit_path, path, sizeof path);
    else if (f->images_dir)
        rc = vt_catalog_find_image(f->images_dir, id, path, sizeof path);
    else
        return 0;
    if (rc == VT_ENOTFOUND) return 0;
    if (rc) {
        snprintf(f->image_error, sizeof f->image_error, "%s", vt_errmsg());
        *why = f->image_error;
        return 0;
    }
    return (f->o_image = strdup(path)) ? 0 : VT_ENOMEM;
}

/* Common checks of a row's id: present, safe, not seen before. Returns 1 when the row is
 * an error (filled in), 0 when the id is fine. */
static int check_id(vt_feed *f, vt_feed_row *row, const char *id) {
    if (!id || !*id) return set_error(f, row, VT_EINVAL, "missing id");
    if (!vt_catalog_id_ok(id))
        return set_error(f, row, VT_EINVAL, "invalid id '%.80s' (empty, over 255 bytes, starts with '.', or has '/', '\\' or control characters)", id);
    int64_t first;
    if (vt__idmap_get(f->seen, id, &first))
        return set_error(f, row, VT_EEXIST, "duplicate id '%.80s' (first on line %lld)", id, (long long)first);
    return 0;
}

/* Finishes a good row: records its id and looks up its image. */
static int accept_row(vt_feed *f, vt_feed_row *row, const char *explicit_image) {
    if (vt__idmap_add(f->seen, row->id, row->line) == VT_ENOMEM ||
        resolve_image(f, row->id, explicit_image, &row->image_error))
        return f->fatal = vt__err(VT_ENOMEM, "%s: out of memory", f->name);
    row->image = f->o_image;
    return 1;
}

/* Turns the next CSV record into a row: field count, id checks, attributes as a JSON object of
 * the non-empty fields, image. Returns 1 with a row (good or bad), 0 at the end, < 0 on failure. */
static int csv_next(vt_feed *f, vt_feed_row *row) {
    if (!csv_pop(f)) return f->fatal ? f->fatal : 0;
    rec *r = &f->out;
    row->line = r->line;
    f->rows++;
    if (r->nf > f->id_col && r->len[f->id_col]) row->id = r->f[f->id_col];
    if (r->bad) f->parse_errors++;
    if (r->bad == REC_TOOLONG) {
        if (r->last_line > r->line)
            return set_error(f, row, VT_ETOOBIG, "row is longer than %zu bytes (lines %ld-%ld skipped; an unclosed quote?)",
                             f->max_row, r->line, r->last_line);
        return set_error(f, row, VT_ETOOBIG, "row is longer than %zu bytes", f->max_row);
    }
    if (r->bad == REC_SYNTAX)
        return set_error(f, row, VT_ECORRUPT,
                         "malformed CSV quoting on line %ld (a quote inside an unquoted field, or text after a "
                         "closing quote): lines %ld-%ld skipped", r->last_line, r->line, r->last_line);
    if (r->bad == REC_UNCLOSED)
        return set_error(f, row, VT_ECORRUPT,
                         "a quoted field in the row on line %ld is never closed: lines %ld-%ld (the rest of the "
                         "feed) could not be read", r->line, r->line, r->last_line);
    if (r->nf != f->ncols) {
        if (!row->id) f->parse_errors++; /* an unquoted comma after the id leaves the id known */
        return set_error(f, row, VT_ECORRUPT, "%d fields but the header has %d%s", r->nf, f->ncols,
                         r->nf > f->ncols ? " (an unquoted comma?)" : "");
    }
    if (r->has_nul) return set_error(f, row, VT_ECORRUPT, "a field contains a NUL byte");
    if (check_id(f, row, row->id)) return 1;
    json_t *o = json_object();
    if (!o) return f->fatal = vt__err(VT_ENOMEM, "out of memory");
    for (int i = 0; i < r->nf; i++) {
        if (i == f->id_col || i == f->image_col || !r->len[i]) continue;
        json_t *v = json_stringn(r->f[i], r->len[i]);
        if (!v) {
            json_decref(o);
            return set_error(f, row, VT_ECORRUPT, "field '%.80s' is not valid UTF-8", f->cols[i]);
        }
        json_object_set_new(o, f->cols[i], v);
    }
    free(f->o_attrs);
    f->o_attrs = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!f->o_attrs) return f->fatal = vt__err(VT_ENOMEM, "out of memory");
    row->attrs = f->o_attrs;
    return accept_row(f, row, f->image_col >= 0 ? r->f[f->image_col] : NULL);
}

/* ---- JSON Lines */

/* Reads the next non-blank line into f->lbuf; sets *toolong when it exceeded max_row (the line
 * is then consumed but not kept). Returns 0 at the end of input. */
static int jsonl_line(vt_feed *f, long *line, int *toolong) {
    for (;;) {
        f->llen = 0;
        *toolong = 0;
        *line = f->line;
        int got = 0;
        for (;;) {
            if (!fill(f)) break;
            got = 1;
            const uint8_t *p = f->buf + f->bpos;
            size_t avail = f->blen - f->bpos;
            const uint8_t *nl = memchr(p, '\n', avail);
            size_t n = nl ? (size_t)(nl - p) : avail;
            f->bpos += n + (nl ? 1 : 0);
            if (!*toolong) {
                if (f->llen + n > f->max_row) {
                    *toolong = 1;
                } else {
                    if (f->llen + n + 1 > f->lcap) {
                        size_t nc = VT_MAX(f->lcap * 2, f->llen + n + 1);
                        char *nb = realloc(f->lbuf, nc);
                        if (!nb) {
                            f->fatal = vt__err(VT_ENOMEM, "out of memory");
                            return 0;
                        }
                        f->lbuf = nb;
                        f->lcap = nc;
                    }
                    memcpy(f->lbuf + f->llen, p, n);
                    f->llen += n;
                }
            }
            if (nl) {
                f->line++;
                break;
            }
        }
        if (!got) return 0;
        if (*toolong || !is_blank((const uint8_t *)f->lbuf, f->llen)) {
            if (f->lbuf) f->lbuf[f->llen] = 0;
            return 1;
        }
    }
}

/* The same for a JSON Lines feed: one object per non-blank line; id a string or an integer. */
static int jsonl_next(vt_feed *f, vt_feed_row *row) {
    long line;
    int toolong;
    if (!jsonl_line(f, &line, &toolong)) return f->fatal ? f->fatal : 0;
    row->line = line;
    f->rows++;
    if (toolong) {
        f->parse_errors++;
        return set_error(f, row, VT_ETOOBIG, "row is longer than %zu bytes", f->max_row);
    }
    json_error_t je;
    json_t *o = json_loadb(f->lbuf, f->llen, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        f->parse_errors++;
        return set_error(f, row, VT_ECORRUPT, "invalid JSON at column %d: %s", je.column, je.text);
    }
    if (!json_is_object(o)) {
        json_decref(o);
        f->parse_errors++;
        return set_error(f, row, VT_ECORRUPT, "not a JSON object");
    }
    json_t *jid = json_object_get(o, "id");
    free(f->o_id);
    f->o_id = NULL;
    if (json_is_string(jid)) {
        f->o_id = strndup(json_string_value(jid), json_string_length(jid));
        if (f->o_id && strlen(f->o_id) != json_string_length(jid)) f->o_id[0] = 0; /* NUL inside: invalid */
    } else if (json_is_integer(jid)) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(jid));
        f->o_id = strdup(tmp);
    } else if (jid) {
        json_decref(o);
        return set_error(f, row, VT_EINVAL, "id must be a string or an integer");
    }
    if (jid && !f->o_id) {
        json_decref(o);
        return f->fatal = vt__err(VT_ENOMEM, "out of memory");
    }
    row->id = f->o_id && *f->o_id ? f->o_id : NULL;
    if (check_id(f, row, row->id)) {
        json_decref(o);
        return 1;
    }
    static const char *const imn[] = {"image", "image_path", "image_file", "path", NULL};
    char *img = NULL;
    for (const char *const *k = imn; *k; k++) {
        json_t *v = json_object_get(o, *k);
        if (json_is_string(v) && !img) {
            img = strdup(json_string_value(v));
            if (!img) {
                json_decref(o);
                return f->fatal = vt__err(VT_ENOMEM, "out of memory");
            }
        }
        json_object_del(o, *k);
    }
    json_object_del(o, "id");
    free(f->o_attrs);
    f->o_attrs = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!f->o_attrs) {
        free(img);
        return f->fatal = vt__err(VT_ENOMEM, "out of memory");
    }
    row->attrs = f->o_attrs;
    int rc = accept_row(f, row, img);
    free(img);
    return rc;
}

/* ---- public */

static vt_feed_format guess_format(const char *name, const uint8_t *head, size_t n) {
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (dot && !strcasecmp(dot, ".csv")) return VT_FEED_CSV;
    if (dot && (!strcasecmp(dot, ".jsonl") || !strcasecmp(dot, ".ndjson") || !strcasecmp(dot, ".json")))
        return VT_FEED_JSONL;
    size_t i = 0;
    if (n >= 3 && !memcmp(head, "\xEF\xBB\xBF", 3)) i = 3;
    while (i < n && (head[i] == ' ' || head[i] == '\t' || head[i] == '\r' || head[i] == '\n')) i++;
    return i < n && head[i] == '{' ? VT_FEED_JSONL : VT_FEED_CSV;
}

/* Applies the options, settles the format (sniffing the first bytes if need be) and, for CSV,
 * reads the header. */
static int feed_start(vt_feed *f, const vt_feed_opts *opts) {
    f->max_row = opts && opts->max_row_bytes ? opts->max_row_bytes : (1u << 20);
    f->line = 1;
    f->cancel = opts ? opts->cancel : NULL;
    if (opts && opts->images_dir) {
        struct stat st;
        if (stat(opts->images_dir, &st) != 0) {
            int e = errno;
            return vt__err(e == ENOENT ? VT_ENOENT : VT_EIO, "images folder %s: %s", opts->images_dir, strerror(e));
        }
        if (!S_ISDIR(st.st_mode)) return vt__err(VT_EINVAL, "images folder %s: not a folder", opts->images_dir);
        if (!(f->images_dir = strdup(opts->images_dir))) return vt__err(VT_ENOMEM, "out of memory");
    }
    if (!(f->buf = malloc(CHUNK))) return vt__err(VT_ENOMEM, "out of memory");
    f->fmt = opts ? opts->format : VT_FEED_AUTO;
    if (f->fmt != VT_FEED_AUTO && f->fmt != VT_FEED_CSV && f->fmt != VT_FEED_JSONL)
        return vt__err(VT_EINVAL, "%s: unknown feed format %d", f->name, (int)f->fmt);
    if (f->fmt == VT_FEED_AUTO) {
        fill(f);
        if (f->fatal) return f->fatal;
        f->fmt = guess_format(f->name, f->buf, f->blen);
    }
    if (f->fmt == VT_FEED_CSV) {
        if (csv_init(&f->csv, CSV_OPTS)) return vt__err(VT_ENOMEM, "out of memory");
        f->csv_ready = 1;
        return csv_header(f);
    }
    return VT_OK;
}

static int feed_alloc(const char *name, vt_feed **out) {
    *out = NULL;
    vt_feed *f = calloc(1, sizeof *f);
    if (!f || vt__idmap_create(&f->seen) || !(f->name = strdup(name))) {
        if (f) vt__idmap_free(f->seen);
        free(f);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    const char *slash = strrchr(name, '/');
    if (slash && !(f->dir = strndup(name, (size_t)(slash - name) + (slash == name)))) {
        vt__idmap_free(f->seen);
        free(f->name);
        free(f);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    *out = f;
    return VT_OK;
}

int vt_feed_open(const char *path, const vt_feed_opts *opts, vt_feed **out) {
    if (!path || !out) return vt__err(VT_EINVAL, "vt_feed_open: NULL argument");
    vt_feed *f;
    int rc = feed_alloc(path, &f);
    if (rc) return rc;
    f->fp = fopen(path, "rb");
    struct stat st;
    if (!f->fp || fstat(fileno(f->fp), &st) != 0) {
        int e = errno;
        vt_feed_close(f);
        if (e == EINTR && opts && opts->cancel && *opts->cancel) return vt__err(VT_ECANCELED, "%s: opening interrupted", path);
        return vt__err(e == ENOENT ? VT_ENOENT : VT_EIO, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        vt_feed_close(f);
        return vt__err(VT_EINVAL, "%s: is a folder, not a feed file", path);
    }
    rc = feed_start(f, opts);
    if (rc) {
        vt_feed_close(f);
        return rc;
    }
    *out = f;
    return VT_OK;
}

int vt_feed_open_mem(const void *buf, size_t len, const char *name, const vt_feed_opts *opts, vt_feed **out) {
    if ((!buf && len) || !out) return vt__err(VT_EINVAL, "vt_feed_open_mem: NULL argument");
    vt_feed *f;
    int rc = feed_alloc(name ? name : "feed", &f);
    if (rc) return rc;
    f->mem = buf;
    f->mem_len = len;
    rc = feed_start(f, opts);
    if (rc) {
        vt_feed_close(f);
        return rc;
    }
    *out = f;
    return VT_OK;
}

int vt_feed_next(vt_feed *f, vt_feed_row *row) {
    if (!f || !row) return vt__err(VT_EINVAL, "vt_feed_next: NULL argument");
    memset(row, 0, sizeof *row);
    row->file = f->name;
    if (f->fatal) return f->fatal;
    if (f->cancel && *f->cancel) return vt__err(VT_ECANCELED, "%s: reading interrupted", f->name);
    return f->fmt == VT_FEED_CSV ? csv_next(f, row) : jsonl_next(f, row);
}

void vt_feed_counts(const vt_feed *f, long *rows, long *errors) {
    if (rows) *rows = f ? f->rows : 0;
    if (errors) *errors = f ? f->errors : 0;
}

long vt_feed_parse_errors(const vt_feed *f) { return f ? f->parse_errors : 0; }

vt_feed_format vt_feed_get_format(const vt_feed *f) { return f ? f->fmt : VT_FEED_AUTO; }

void vt_feed_close(vt_feed *f) {
    if (!f) return;
    if (f->fp) fclose(f->fp);
    if (f->csv_ready) csv_free(&f->csv);
    rec_free(&f->cur);
    rec_free(&f->out);
    for (size_t i = 0; i < f->qlen; i++) rec_free(&f->q[f->qhead + i]);
    free(f->q);
    for (int i = 0; i < f->ncols; i++) free(f->cols[i]);
    free(f->cols);
    vt__idmap_free(f->seen);
    free(f->lbuf);
    free(f->buf);
    free(f->o_id);
    free(f->o_attrs);
    free(f->o_image);
    free(f->images_dir);
    free(f->dir);
    free(f->name);
    free(f);
}
