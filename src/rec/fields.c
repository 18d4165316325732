/* fields.c: the fields a catalog can be filtered on, so that a misspelt filter is refused instead of
 * silently matching nothing: the store's indexed fields and every attribute name of its items. */
#include "core/internal.h"
#include "store/store_internal.h"
#include <jansson.h>
#include <string.h>
#include <strings.h>

/* Those shown in lists (no aliases). */
static const char *const shown[] = {"id", "gender", "masterCategory", "subCategory", "articleType", "baseColour"};

struct vt_fields {
    json_t *names; /* attribute name -> true */
    char *list;    /* sorted, comma-separated */
};

static int collect(const vt_item *it, void *user) {
    json_t *names = user;
    json_t *a = it->attrs ? json_loads(it->attrs, 0, NULL) : NULL;
    const char *k;
    json_t *v;
    json_object_foreach(a, k, v) {
        if (vt__filter_name_ok(k) && !json_object_get(names, k) && json_object_set_new(names, k, json_true())) {
            json_decref(a);
            return VT_ENOMEM;
        }
    }
    json_decref(a);
    return 0;
}

static int cmp_name(const void *a, const void *b) {
    int c = strcasecmp(*(const char *const *)a, *(const char *const *)b);
    return c ? c : strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Builds the sorted list of the indexed fields and the attribute names, without duplicates. */
static int build_list(vt_fields *f) {
    size_t nshown = sizeof shown / sizeof *shown, n = json_object_size(f->names) + nshown, k = 0, len = 1;
    const char **v = malloc(n * sizeof *v);
    if (!v) return VT_ENOMEM;
    for (size_t i = 0; i < nshown; i++) v[k++] = shown[i];
    const char *name;
    json_t *val;
    json_object_foreach(f->names, name, val) {
        int dup = 0;
        for (size_t i = 0; i < nshown && !dup; i++) dup = !strcmp(name, shown[i]);
        if (!dup) v[k++] = name;
    }
    qsort(v, k, sizeof *v, cmp_name);
    for (size_t i = 0; i < k; i++) len += strlen(v[i]) + 2;
    f->list = malloc(len);
    if (!f->list) {
        free(v);
        return VT_ENOMEM;
    }
    f->list[0] = 0;
    for (size_t i = 0, o = 0; i < k; i++) o += (size_t)sprintf(f->list + o, "%s%s", i ? ", " : "", v[i]);
    free(v);
    return VT_OK;
}

int vt_fields_load(vt_store *s, vt_fields **out) {
    if (!out) return vt__err(VT_EINVAL, "vt_fields_load: out is NULL");
    *out = NULL;
    if (!s) return vt__err(VT_EINVAL, "vt_fields_load: no store");
    vt_fields *f = calloc(1, sizeof *f);
    if (!f || !(f->names = json_object())) {
        free(f);
        return vt__err(VT_ENOMEM, "out of memory");
    }
    int rc = vt_store_foreach(s, NULL, collect, f->names);
    if (rc > 0) rc = VT_ENOMEM;
    if (rc == VT_ENOMEM) vt__err(rc, "out of memory reading the catalog's field names");
    if (rc == 0 && build_list(f)) rc = vt__err(VT_ENOMEM, "out of memory");
    if (rc) {
        vt_fields_free(f);
        return rc;
    }
    *out = f;
    return VT_OK;
}

void vt_fields_free(vt_fields *f) {
    if (!f) return;
    json_decref(f->names);
    free(f->list);
    free(f);
}

int vt_fields_has(const vt_fields *f, const char *field) {
    if (!f || !field) return 0;
    if (vt__filter_column(field)) return 1;
    return json_object_get(f->names, field) != NULL;
}

const char *vt_fields_list(const vt_fields *f) { return f && f->list ? f->list : ""; }
